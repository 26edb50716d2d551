"""Every Kafka topic Hamster uses, declared once, in flow order, and created explicitly at start.

Broker auto-creation is off (``auto.create.topics.enable=false``): a topic created by accident with another
partition count breaks co-partitioning (Faust's ``PartitionsMismatch``). All per-run topics (stage requests,
the run log and the run-state changelog) share one partition count and raw string keys, so one worker owns
every record of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hamster.settings import Settings

DAY_MS = 24 * 60 * 60 * 1000
# GitHub caps webhook payloads at 25 MiB; leave room for the envelope around it.
MAX_MESSAGE_BYTES = 26 * 1024 * 1024 + 512 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: str
    partitions: int
    retention_ms: int  # -1: keep forever
    compacted: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
            **self.extra,
        }


def events_topic(settings: Settings) -> str:
    return f"{settings.namespace}.events"


def subscribers_topic(settings: Settings) -> str:
    return f"{settings.namespace}.subscribers"


def lanes_topic(settings: Settings) -> str:
    return f"{settings.namespace}.lanes"


def run_control_topic(settings: Settings) -> str:
    return f"{settings.namespace}.run-control"


def stage_topic(settings: Settings, task_name: str) -> str:
    return f"{settings.namespace}.stage.{task_name}"


def run_events_topic(settings: Settings) -> str:
    return f"{settings.namespace}.run-events"


def logs_topic(settings: Settings) -> str:
    return f"{settings.namespace}.logs"


def run_marks_topic(settings: Settings) -> str:
    return f"{settings.namespace}.run-marks"


def audit_checkpoints_topic(settings: Settings) -> str:
    return f"{settings.namespace}.audit-checkpoints"


def dead_letters_topic(settings: Settings) -> str:
    return f"{settings.namespace}.dead-letters"


def leader_topic(settings: Settings) -> str:
    """The topic Faust's partition assignor elects a leader worker with (``<app id>-__assignor-__leader``)."""
    return f"{settings.namespace}-__assignor-__leader"


def changelog_topic(settings: Settings, table: str) -> str:
    """The name Faust gives a table's changelog: ``<app id>-<table>-changelog``."""
    return f"{settings.namespace}-{table}-changelog"


def topic_specs(settings: Settings, task_names: list[str] | tuple[str, ...] = ()) -> list[TopicSpec]:
    """All topics, in the order a webhook flows through them."""
    retention = settings.retention_days * DAY_MS
    p = settings.partitions
    specs = [
        TopicSpec(events_topic(settings), "repository full name", "EventEnvelope", p, retention),
        # The subscriber changes and the table's changelog are the subscriber history: kept forever, not
        # compacted (compacted changelogs can hang Faust's table recovery, faust-streaming #176/#597).
        TopicSpec(subscribers_topic(settings), "subscriber name", "SubscriberChange", 1, -1),
        TopicSpec(changelog_topic(settings, "subscribers"), "subscriber name", "SubscriberState", 1, -1),
        # The tables below hold the latest state per key and delete what they no longer need: their
        # changelogs are compacted, so a worker recovers the keys alive now, not the days of history.
        TopicSpec(
            changelog_topic(settings, "deliveries"), "delivery id", "first-seen time", p, -1, compacted=True
        ),
        # The runs each merge group started, so its `destroyed` can cancel them (hamster.runs.merge_groups).
        TopicSpec(
            changelog_topic(settings, "merge-groups"), "repo:head sha", "GroupRuns", p, -1, compacted=True
        ),
    ]
    specs += [
        # Concurrency control (hamster.subscribers.concurrency): runs filed and finished, per repository, and
        # the books the lanes agent keeps of them; cancellations go to the run they cancel, keyed like the run
        # log.
        TopicSpec(lanes_topic(settings), "repository full name", "LaneCommand", p, retention),
        TopicSpec(
            changelog_topic(settings, "lanes"), "subscriber + repository", "LaneBook", p, -1, compacted=True
        ),
        TopicSpec(run_control_topic(settings), "run id", "CancelRun", p, retention),
    ]
    specs += [
        TopicSpec(stage_topic(settings, name), "run id", "StageRequest", p, retention)
        for name in sorted(set(task_names))
    ]
    specs += [
        TopicSpec(run_events_topic(settings), "run id", "RunEvent", p, retention),
        # What stages printed, in chunks as they ran (hamster.execution.stage_logs): keyed like the run log,
        # so a run's log is one partition, in order; kept as long as the run log it belongs to.
        TopicSpec(logs_topic(settings), "run id", "LogChunk", p, retention),
        # Per run-log partition, an offset before which every run has finished: where a starting worker
        # begins to fold the log (agents.plumbing.run_view). Only the latest mark per partition matters.
        TopicSpec(run_marks_topic(settings), "run-log partition", "offset", 1, -1, compacted=True),
        TopicSpec(changelog_topic(settings, "reported"), "run id", "ReportState", p, -1, compacted=True),
        # Signed checkpoints of the run log (hamster.runs.audit_checkpoints): append-only, one partition, kept
        # a day longer than the records they vouch for.
        TopicSpec(
            audit_checkpoints_topic(settings), "run-log partition", "Checkpoint", 1, retention + DAY_MS
        ),
        # Records no agent could decode (streams.dead_letter_codec): one partition, read whole by `hamster
        # dlq`.
        TopicSpec(dead_letters_topic(settings), "source topic", "DeadLetter", 1, retention),
        # Faust's own: declared here so that it is replicated like the rest (Faust would create it alone).
        TopicSpec(leader_topic(settings), "-", "nothing (its assignment elects the leader)", 1, retention),
    ]
    return specs
