"""Fixtures for the whole suite. The real Kafka broker starts only for tests that ask for it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hamster.broker import LocalBroker
from hamster.settings import load_settings
from tests.postgres import LocalPostgres


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real single-node Kafka, started once per session in a fresh home, then stopped.

    The port is ``$HAMSTER_TEST_KAFKA_PORT`` (default 29092; the controller takes the next one), away from
    the 9092 a developer's own `hamster broker` uses.
    """
    port = int(os.environ.get("HAMSTER_TEST_KAFKA_PORT", "29092"))
    home = tmp_path_factory.mktemp("kafka-home")
    broker = LocalBroker(load_settings(kafka_bootstrap=f"127.0.0.1:{port}", home=home))
    try:
        yield broker.start(timeout_s=120.0).bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A real PostgreSQL (Debian's package) on a free port with a data dir of its own, for the session."""
    server = LocalPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()
