"""Hamster's Prometheus metrics: what each record and webhook counts, in a registry of the test's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from hamster.metrics import Metrics, consumer_lag, rejection_reason
from hamster.runs.events import RunFailed, RunSucceeded
from tests.unit.runs.records import RUN, failed, requested, succeeded


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_run_records_count_started_finished_and_stage_durations():
    """RunRequested counts a start; stage records feed the duration histogram; run ends count by status."""
    metrics = Metrics()
    metrics.observe(requested(), "sub")
    metrics.observe(succeeded(3, 0), "sub")
    metrics.observe(failed(5, 1), "sub")
    metrics.observe(RunFailed(event_id="e6", run_id=RUN, seq=6, reason="b failed"), "sub")
    metrics.observe(RunSucceeded(event_id="e7", run_id="other", seq=7), "sub")
    assert value(metrics, "hamster_runs_started_total", subscriber="sub") == 1
    assert value(metrics, "hamster_runs_finished_total", subscriber="sub", status="failed") == 1
    assert value(metrics, "hamster_runs_finished_total", subscriber="sub", status="succeeded") == 1
    assert value(metrics, "hamster_stage_duration_seconds_count", task="a") == 1
    assert value(metrics, "hamster_stage_duration_seconds_sum", task="b") == 0.001


def test_webhooks_count_by_event_and_rejection_reason():
    """Stored webhooks count by event and feed the latency histogram; rejections count by a fixed reason."""
    metrics = Metrics()
    metrics.webhook_stored("push", 0.02)
    metrics.webhook_stored("push", 0.2)
    metrics.webhook_rejected(401)
    metrics.webhook_rejected(503)
    metrics.webhook_rejected(401)
    assert value(metrics, "hamster_webhooks_received_total", event="push") == 2
    assert value(metrics, "hamster_intake_latency_seconds_bucket", le="0.025") == 1
    assert value(metrics, "hamster_intake_latency_seconds_count") == 2
    assert value(metrics, "hamster_webhooks_rejected_total", reason="signature") == 2
    assert value(metrics, "hamster_webhooks_rejected_total", reason="broker_unavailable") == 1


def test_rejection_reasons_are_a_bounded_set():
    """Known statuses get names; any other status becomes http_<status>, never text from the request."""
    assert [rejection_reason(s) for s in (400, 401, 413, 503)] == [
        "malformed",
        "signature",
        "too_large",
        "broker_unavailable",
    ]
    assert rejection_reason(418) == "http_418"


def test_consumer_lag_counts_records_after_the_last_processed():
    """Lag is highwater minus the records processed; unknown highwater is no value; never negative."""
    assert consumer_lag(10, 4) == 5
    assert consumer_lag(10, None) == 10
    assert consumer_lag(10, 9) == 0
    assert consumer_lag(None, 3) is None
    assert consumer_lag(3, 7) == 0


def test_set_lag_replaces_the_partitions_shown():
    """A partition no longer assigned disappears from the gauge; an unknown lag is left out."""
    metrics = Metrics()
    metrics.set_lag([("t.events", 0, 3), ("t.events", 1, 0)])
    metrics.set_lag([("t.events", 1, 2), ("t.events", 2, None)])
    assert value(metrics, "hamster_consumer_lag", topic="t.events", partition="0") is None
    assert value(metrics, "hamster_consumer_lag", topic="t.events", partition="1") == 2
    assert value(metrics, "hamster_consumer_lag", topic="t.events", partition="2") is None


def test_render_is_prometheus_text_of_the_injected_registry():
    """render() gives parseable Prometheus text holding the registry's collectors, and only those."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert metrics.registry is registry
    metrics.webhook_stored("ping", 0.01)
    names = {family.name for family in text_string_to_metric_families(metrics.render().decode())}
    assert {"hamster_webhooks_received", "hamster_intake_latency_seconds", "hamster_consumer_lag"} <= names
    assert not any(name.startswith(("python_", "process_")) for name in names)


def test_two_metrics_objects_do_not_collide():
    """Each Metrics has its own registry, so a process (or a test) can make several."""
    first, second = Metrics(), Metrics()
    first.webhook_rejected(401)
    assert value(second, "hamster_webhooks_rejected_total", reason="signature") is None
