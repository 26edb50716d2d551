"""The one Faust app, with its topics and tables, built from the settings and the loaded subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import RecordMetadata, TableT

from hamster.kafka_access import faust_options
from hamster.metrics import Metrics, watch_consumer_lag
from hamster.settings import Settings
from hamster.subscribers.spec import Catalog
from streams import topics
from streams.replication import SINGLE, Replication
from streams.topics import MAX_MESSAGE_BYTES
from streams.transport import App

# Every topic and table holds raw bytes: keys as Kafka's partitioner hashes them, values as our codecs made.
Topic: TypeAlias = faust.TopicT
Table: TypeAlias = TableT[bytes, bytes]
# What an agent of one of those topics iterates, and each record it gets (``stream.events()``).
RawStream: TypeAlias = faust.StreamT[bytes]
RawEvent: TypeAlias = faust.EventT[bytes]


@dataclass
class Streams:
    """Everything the agents share: the app, its topics and its tables."""

    app: faust.App
    settings: Settings
    catalog: Catalog
    events: Topic
    subscriber_changes: Topic
    stages: dict[str, Topic]
    run_events: Topic
    subscribers: Table  # a global table: subscriber name → SubscriberState JSON
    deliveries: Table  # delivery id → first-seen record JSON (partitioned like the events topic)
    lanes: Topic  # LaneCommand records, key repository (hamster.subscribers.lane_commands)
    lane_books: Table  # subscriber + repository → LaneBook JSON (partitioned like ``lanes``)
    run_control: Topic  # CancelRun commands, key run id (partitioned like the run log)
    dead_letters: Topic  # records no agent could decode (streams.dead_letter_codec)
    reported: Table  # run id → ReportState JSON (what GitHub was told; like the run log)
    merge_groups: Table  # <repo>:<head sha> → GroupRuns JSON (partitioned like the events topic)
    run_marks: Topic  # where a starting worker begins to fold the run log (agents.plumbing.run_view)
    audit_checkpoints: Topic  # signed checkpoints of the run log (hamster.runs.audit_checkpoints)
    logs: Topic  # LogChunk records, key run id: what stages printed (hamster.execution.stage_logs)
    metrics: Metrics = field(default_factory=Metrics)  # served with Faust's sensors at the worker's /metrics

    def stage_topic(self, task_name: str) -> Topic:
        """The topic of a task's stage requests, also for a task not registered on this worker."""
        known = self.stages.get(task_name)
        if known is not None:
            return known
        return _topic(self.app, topics.stage_topic(self.settings, task_name), self.settings.partitions)


def _topic(app: faust.App, name: str, partitions: int) -> Topic:
    # Raw bytes keys: Kafka's partitioner hashes the key bytes, and JSON-encoded keys would hash
    # differently from the same keys written by the intake or kafka-python.
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )


def create_streams(
    settings: Settings,
    catalog: Catalog,
    *,
    web_port: int = 6066,
    web_host: str = "127.0.0.1",
    replication: Replication = SINGLE,
) -> Streams:
    """The app; ``replication`` is what the cluster's topics get (``streams.admin.topic_replication``)."""
    app = App(
        settings.namespace,
        **faust_options(settings.kafka),
        store=f"{settings.table_store}://",
        # Faust's working folder (``<id>-data`` in the current directory by default) goes with the rest, one
        # per worker of a host (RocksDB locks its files): named by the worker's web port, unique on a host
        # and the same across restarts, so a restarted worker finds its tables.
        datadir=str(settings.home / "faust" / f"worker-{web_port}"),
        autodiscover=False,
        topic_partitions=settings.partitions,
        # Every topic is created before the app starts (streams.admin); these apply to any Faust makes.
        topic_replication_factor=replication.factor,
        web_enabled=True,
        # Stats at / and /assignment/; /table/ would show every table's contents to anyone who can connect.
        web_stats_enabled=True,
        web_tables_enabled=False,
        web_port=web_port,
        web_host=web_host,
        web_bind=web_host,
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_s,
        # Faust refuses a session timeout longer than its request timeout (90 s by default).
        broker_request_timeout=max(90.0, settings.kafka_session_timeout_s + 30.0),
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
        table_standby_replicas=0,
    )
    metrics = Metrics()
    setup_prometheus_sensors(app, registry=metrics.registry, name_prefix="faust")
    watch_consumer_lag(app, metrics)
    p = settings.partitions
    raw: faust.Schema[bytes, bytes] = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    table_args: dict[str, Any] = {
        "schema": raw,
        "key_type": bytes,
        "value_type": bytes,
        "extra_topic_configs": replication.topic_config(),
    }
    return Streams(
        app=app,
        settings=settings,
        catalog=catalog,
        events=_topic(app, topics.events_topic(settings), p),
        subscriber_changes=_topic(app, topics.subscribers_topic(settings), 1),
        stages={name: _topic(app, topics.stage_topic(settings, name), p) for name in sorted(catalog.tasks)},
        run_events=_topic(app, topics.run_events_topic(settings), p),
        # GlobalTable recovery can loop with several workers unless it has one partition and a recovery
        # buffer of one (faust-streaming #176/#597).
        subscribers=app.GlobalTable("subscribers", partitions=1, recovery_buffer_size=1, **table_args),
        deliveries=app.Table("deliveries", partitions=p, **table_args),
        merge_groups=app.Table("merge-groups", partitions=p, **table_args),
        reported=app.Table("reported", partitions=p, **table_args),
        lanes=_topic(app, topics.lanes_topic(settings), p),
        lane_books=app.Table("lanes", partitions=p, **table_args),
        run_control=_topic(app, topics.run_control_topic(settings), p),
        dead_letters=_topic(app, topics.dead_letters_topic(settings), 1),
        run_marks=_topic(app, topics.run_marks_topic(settings), 1),
        audit_checkpoints=_topic(app, topics.audit_checkpoints_topic(settings), 1),
        logs=_topic(app, topics.logs_topic(settings), p),
        metrics=metrics,
    )


async def send_acked(topic: Topic, key: str, value: bytes) -> RecordMetadata:
    """Send and wait until the broker acknowledged the write (Faust's ``send`` only enqueues it)."""
    pending = await topic.send(key=key.encode(), value=value)
    return await pending
