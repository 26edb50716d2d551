"""The intake under faults: the broker stopped and restarted, the intake killed and restarted, mid-stream.

A sender plays GitHub: every webhook not answered 2xx is delivered again under the same delivery id until it
is (GitHub's redelivery). Then every delivery answered 202 must be in the events topic, and each must have
made exactly one run. These tests run a broker of their own on 127.0.0.1:29792, which they stop.
"""

from __future__ import annotations

from collections import Counter

import pytest

from hamster.broker import LocalBroker
from hamster.settings import load_settings
from tests.integration.fault_tools import GitHub, delivery_counts
from tests.integration.system import System, wait_until

# Slow on purpose (a session timeout, broker restarts, 10,000 requests): above the suite's 300 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BOOTSTRAP = "127.0.0.1:29792"
WEBHOOKS = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    local = LocalBroker(
        load_settings(kafka_bootstrap=BOOTSTRAP, home=tmp_path_factory.mktemp("faults-broker"))
    )
    try:
        local.start(timeout_s=120.0)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def system(broker, tmp_path_factory):
    with System(BOOTSTRAP, tmp_path_factory.mktemp("intake-faults"), "tests.pipelines.faults").running(
        {"steady"}
    ) as hamster:
        yield hamster


def check_every_delivery_ran_once(system: System, github: GitHub) -> None:
    github.join(600)
    assert not github.is_alive() and github.error is None, github.error
    assert github.acknowledged == github.deliveries
    counts = delivery_counts(system)
    assert all(counts[d] >= 1 for d in github.deliveries), (
        "a delivery answered 202 is not in the events topic"
    )
    wanted = set(github.deliveries)

    def all_finished() -> list[dict] | None:
        runs = [r for r in system.runs(subscriber="steady") if r["delivery_id"] in wanted]
        finished = [r for r in runs if r["status"] in {"succeeded", "failed", "cancelled"}]
        return runs if len(finished) >= len(wanted) else None

    runs = wait_until(all_finished, 420, 1.0, what=f"{len(wanted)} finished runs")
    assert Counter(r["delivery_id"] for r in runs) == Counter(github.deliveries)  # exactly one run each
    assert {r["status"] for r in runs} == {"succeeded"}


def test_broker_restart_mid_stream_loses_nothing(system: System, broker: LocalBroker):
    """Broker stopped mid-stream: webhooks get 503 (never 2xx) until it is back; then every delivery is
    stored and runs exactly once."""
    github = GitHub(system, WEBHOOKS, "broker", pause_at=5)
    github.start()
    assert github.paused.wait(120), "the stream did not get under way"
    broker.stop()
    github.resume.set()
    wait_until(lambda: github.answers[503] >= 1 or github.error, 120, what="a 503 while the broker is down")
    broker.start(timeout_s=120.0)
    check_every_delivery_ran_once(system, github)
    assert github.answers[503] >= 1 and github.answers[0] == 0


def test_intake_killed_mid_stream_loses_nothing(system: System):
    """The intake SIGKILLed mid-stream and restarted: every delivery is stored and runs exactly once."""
    github = GitHub(system, WEBHOOKS, "intake", pause_at=5)
    github.start()
    assert github.paused.wait(120), "the stream did not get under way"
    system.kill("web")
    github.resume.set()
    wait_until(lambda: github.answers[0] >= 1 or github.error, 60, what="a refused connection")
    system.start_intake()
    check_every_delivery_ran_once(system, github)
    assert github.answers[0] >= 1
