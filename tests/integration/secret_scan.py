"""Searching everything a test run wrote for secret values: files under HAMSTER_HOME and every record of the
system's topics, for each secret written out plainly or base64-encoded (as in dead letters)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

from kafka import KafkaConsumer

from streams.reader import read_topic
from tests.integration.system import System


def forms(value: str) -> list[bytes]:
    """The secret as it would appear written out plainly, or base64-encoded (as in dead letters)."""
    raw = value.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def leaks(blob: bytes, secrets: Mapping[str, str]) -> list[str]:
    """The names of the ``secrets`` (name: value) whose value ``blob`` holds in any of its forms."""
    return [name for name, value in secrets.items() if any(form in blob for form in forms(value))]


def files_under(home: Path, but: str | None = None) -> dict[str, bytes]:
    """Every file under ``home`` (but the one named ``but``), by path."""
    return {
        str(path): path.read_bytes()
        for path in sorted(home.rglob("*"))
        if path.is_file() and path.name != but
    }


def topic_records(system: System) -> dict[str, bytes]:
    """Every record of the system's topics (its namespace's, Faust's changelogs too), named
    ``topic[partition]@offset``: key, value and headers."""
    consumer = KafkaConsumer(bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"])
    topics = sorted(
        t for t in consumer.topics() if t.startswith((system.namespace + ".", system.namespace + "-"))
    )
    consumer.close()
    written: dict[str, bytes] = {}
    for topic in topics:
        for record in read_topic(system.kafka, topic):
            headers = b"".join(k.encode() + v for k, v in record.headers or [])
            written[f"{topic}[{record.partition}]@{record.offset}"] = (
                (record.key or b"") + record.value + headers
            )
    return written
