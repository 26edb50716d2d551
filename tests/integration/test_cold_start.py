"""A first start: webhooks accepted before any worker ran still start their runs."""

from __future__ import annotations

import pytest

from tests.integration.system import System
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration


def test_webhook_before_the_first_worker_starts_its_run(kafka_bootstrap, tmp_path):
    """The match agent waits for its own subscribers to reach the (empty) table before matching."""
    system = System(kafka_bootstrap, tmp_path, "tests.pipelines.catalog")
    try:
        system.start_intake()
        status, delivery = system.post(
            "pull_request", with_repo(load("pull_request", "opened.payload.json"), "acme/three")
        )
        assert status == 202
        system.start_worker("worker-1")  # its first event is already waiting at offset 0
        [run] = system.wait_finished(delivery, timeout=120)
        assert run["subscriber"] == "three-stage" and run["status"] == "succeeded"
    finally:
        system.stop()
