"""Reading ``<namespace>.run-events`` back: when each run's records were written, and what they say."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from hamster.kafka_access import KafkaAccess, kafka_python_options
from hamster.runs.events import decode_run_event


class RunLog:
    """Follows the run log from its start; ``records[run_id]`` is that run's records in order."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            **kafka_python_options(KafkaAccess(bootstrap)), group_id=None, enable_auto_commit=False
        )
        partitions = self.consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(assigned)
        self.consumer.seek_to_beginning(*assigned)
        self.records: dict[str, list[Any]] = defaultdict(list)

    def drain(self) -> None:
        while batch := self.consumer.poll(timeout_ms=200):
            for messages in batch.values():
                for message in messages:
                    record = decode_run_event(message.value)
                    self.records[record.run_id].append(record)

    def finished_at(self, run_id: str) -> float | None:
        """Wall-clock time of the run's RunSucceeded, if it has one yet."""
        for record in self.records.get(run_id, ()):
            if record.type == "RunSucceeded":
                return float(record.occurred_at.timestamp())
        return None

    def wait_finished(self, run_ids: list[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            done = {r: t for r in run_ids if (t := self.finished_at(r)) is not None}
            if len(done) == len(run_ids):
                return done
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(run_ids) - len(done)} of {len(run_ids)} runs unfinished after {timeout} s"
                )

    def close(self) -> None:
        self.consumer.close()


def hops_s(records: list[Any]) -> list[float]:
    """Seconds from each stage's StageSucceeded to the next stage's StageStarted, within one run."""
    succeeded = {r.index: r.occurred_at for r in records if r.type == "StageSucceeded"}
    started = {r.index: r.occurred_at for r in records if r.type == "StageStarted"}
    return [(started[i + 1] - succeeded[i]).total_seconds() for i in sorted(succeeded) if i + 1 in started]


def phases_s(records: list[Any], sent_at: float) -> dict[str, float]:
    """Where a run's time went: webhook → RunRequested (intake + match), stages, hops, → RunSucceeded."""
    first: dict[str, float] = {}
    for r in records:
        first.setdefault(r.type + str(getattr(r, "index", "")), r.occurred_at.timestamp())
    out = {"accept_and_match": first["RunRequested"] - sent_at}
    if "StageStarted0" in first:
        out["to_first_stage"] = first["StageStarted0"] - first["RunRequested"]
    last = max((k for k in first if k.startswith("StageSucceeded")), default=None)
    if last and "RunSucceeded" in first:
        out["finish"] = first["RunSucceeded"] - first[last]
    return out
