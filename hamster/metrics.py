"""Hamster's own Prometheus metrics, one registry per process, served at ``/metrics``.

    intake (hamster web)   hamster_webhooks_received_total{event}
                           hamster_webhooks_rejected_total{reason}
                           hamster_intake_latency_seconds            (received → stored in Kafka)
    workers                hamster_runs_started_total{subscriber}
                           hamster_runs_finished_total{subscriber,status}
                           hamster_stage_duration_seconds{task}
                           hamster_consumer_lag{topic,partition}     (records not yet processed)
                           hamster_consumer_stalls_total{topic,partition}  (commits stuck, read again)

On workers the same registry also holds Faust's sensors (``streams.app``), so one scrape sees both.
Every ``Metrics`` has a registry of its own unless one is passed: tests make as many as they like without
prometheus-client's "duplicated timeseries" error from its global registry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from hamster.runs.events import RunEvent, RunFailed, RunRequested, RunSucceeded, StageFailed, StageSucceeded

if TYPE_CHECKING:  # the intake serves metrics too, and does not import Faust
    from faust.types import AppT

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
LAG_EVERY_S = 5.0

# The intake answers in milliseconds unless Kafka is slow; tasks run from milliseconds to an hour.
_INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STAGE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

# HTTP status of a rejected webhook → the reason label. A fixed set keeps the label's cardinality bounded
# whatever a sender puts in its request.
_REJECTION_REASONS: Mapping[int, str] = {
    400: "malformed",
    401: "signature",
    413: "too_large",
    415: "media_type",
    503: "broker_unavailable",
}


def rejection_reason(status: int) -> str:
    """The ``reason`` label for a webhook answered with ``status``."""
    return _REJECTION_REASONS.get(status, f"http_{status}")


def consumer_lag(highwater: int | None, last_processed: int | None) -> int | None:
    """Records in a partition not processed yet, or None when the end is not known yet.

    The highwater is the offset the next record will get; ``last_processed`` is the offset of the last
    record handed to an agent (None: none yet, so every record up to the highwater is waiting).
    """
    if highwater is None:
        return None
    done = 0 if last_processed is None else last_processed + 1
    return max(0, highwater - done)


class Metrics:
    """The collectors above, registered in ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.webhooks_received = Counter(
            "hamster_webhooks_received", "Webhooks stored in Kafka, by GitHub event.", ["event"], registry=r
        )
        self.webhooks_rejected = Counter(
            "hamster_webhooks_rejected", "Webhooks refused or not stored, by reason.", ["reason"], registry=r
        )
        self.intake_latency = Histogram(
            "hamster_intake_latency_seconds",
            "From a webhook's arrival to Kafka's acknowledgement of its write.",
            buckets=_INTAKE_BUCKETS,
            registry=r,
        )
        self.runs_started = Counter(
            "hamster_runs_started", "Runs requested, by subscriber.", ["subscriber"], registry=r
        )
        self.runs_finished = Counter(
            "hamster_runs_finished",
            "Runs finished, by subscriber and status.",
            ["subscriber", "status"],
            registry=r,
        )
        self.stage_duration = Histogram(
            "hamster_stage_duration_seconds",
            "How long one attempt of a stage ran, by task.",
            ["task"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.records_refused = Counter(
            "hamster_records_refused",
            "Run-log records the state machine refused as this worker folded the log (claims that lost to "
            "another worker's, records of attempts no longer current), by record type.",
            ["type"],
            registry=r,
        )
        self.stage_slots = Gauge(
            "hamster_stage_slots",
            "This worker's stage slots, by state (busy or free).",
            ["state"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "hamster_consumer_lag",
            "Records in a partition that this worker has not processed yet.",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_stalls = Counter(
            "hamster_consumer_stalls",
            "Partitions whose committed offset stood still behind records no agent was processing, read "
            "again from that offset (streams.stall_watch).",
            ["topic", "partition"],
            registry=r,
        )

    def webhook_stored(self, event: str, seconds: float) -> None:
        self.webhooks_received.labels(event=event).inc()
        self.intake_latency.observe(seconds)

    def webhook_rejected(self, status: int) -> None:
        self.webhooks_rejected.labels(reason=rejection_reason(status)).inc()

    def observe(self, record: RunEvent, subscriber: str) -> None:
        """Count what one run-log record says, once it is written."""
        if isinstance(record, RunRequested):
            self.runs_started.labels(subscriber=subscriber).inc()
        elif isinstance(record, StageSucceeded | StageFailed):
            task = record.stage.split("[", 1)[
                0
            ]  # a matrix instance (``unit[python=3.12]``) counts as its task
            self.stage_duration.labels(task=task).observe(record.duration_ms / 1000.0)
        elif isinstance(record, RunSucceeded):
            self.runs_finished.labels(subscriber=subscriber, status="succeeded").inc()
        elif isinstance(record, RunFailed):
            self.runs_finished.labels(subscriber=subscriber, status="failed").inc()

    def set_lag(self, lags: Iterable[tuple[str, int, int | None]]) -> None:
        """Replace the lag gauges with these (topic, partition, lag); partitions not listed are dropped."""
        self.consumer_lag.clear()
        for topic, partition, lag in lags:
            if lag is not None:
                self.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def watch_consumer_lag(app: AppT, metrics: Metrics) -> None:
    """Refresh ``hamster_consumer_lag`` on a Faust worker every few seconds, for its assigned partitions."""

    @app.timer(LAG_EVERY_S)
    async def measure_lag() -> None:
        consumer = app.consumer
        # Faust keeps the offset of the last record it handed to an agent per partition; there is no public
        # accessor for it (faust.transport.consumer.Consumer._read_offset).
        read = getattr(consumer, "_read_offset", {})
        lags = []
        for tp in consumer.assignment():
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # the fetcher has not seen this partition's end yet
                highwater = None
            lags.append((tp.topic, tp.partition, consumer_lag(highwater, read.get(tp))))
        metrics.set_lag(lags)
