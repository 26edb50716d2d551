"""What the fault tests read back: the run log, the events topic, the notes of tasks waiting to be cut off."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from hamster.intake.envelope import decode_envelope
from hamster.runs.events import decode_run_event
from streams.reader import read_topic
from tests.integration.system import System
from tests.samples import load, with_repo


def run_log(system: System, run_id: str | None = None) -> list[Any]:
    """The run-log records (of one run, if given), in log order."""
    records = [decode_run_event(r.value) for r in read_topic(system.kafka, f"{system.namespace}.run-events")]
    return [r for r in records if run_id is None or r.run_id == run_id]


def delivery_counts(system: System) -> Counter[str]:
    """How many times each delivery id is in the events topic."""
    return Counter(
        decode_envelope(r.value).delivery_id for r in read_topic(system.kafka, f"{system.namespace}.events")
    )


def holders(system: System) -> list[list[str]]:
    """Notes of tasks that wait to be cut off: run, stage, attempt, worker pid, then pids to check."""
    path = system.marks.with_name(system.marks.name + ".holders")
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie runs nothing
    except FileNotFoundError:
        return False


def worker_named(system: System, pid: int) -> str:
    return next(name for name, proc in system.procs.items() if proc.pid == pid)


class GitHub(threading.Thread):
    """Sends ``count`` webhooks in order; redelivers each one until it is answered 202."""

    def __init__(
        self, system: System, count: int, tag: str, repos: int = 5, pause_at: int | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.system = system
        self.deliveries = [str(uuid.uuid4()) for _ in range(count)]
        self.payload = load("pull_request", "opened.payload.json")
        self.tag = tag
        self.repos = repos
        # Pausing after ``pause_at`` deliveries lets a test inject its fault mid-stream, not after it.
        self.pause_at = pause_at
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.answers: Counter[int] = Counter()
        self.acknowledged: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i, delivery in enumerate(self.deliveries):
                if i == self.pause_at:
                    self.paused.set()
                    self.resume.wait(600)
                payload = with_repo(self.payload, f"soak/{self.tag}-{i % self.repos}")
                payload["number"] = payload["pull_request"]["number"] = i + 1
                deadline = time.monotonic() + 300
                while True:
                    try:
                        status, _ = self.system.post("pull_request", payload, delivery=delivery)
                    except OSError:  # refused or reset: the intake is down
                        status = 0
                    self.answers[status] += 1
                    if status == 202:
                        self.acknowledged.append(delivery)
                        break
                    assert status in {0, 503}, status
                    assert time.monotonic() < deadline, f"delivery {delivery} never acknowledged"
                    time.sleep(0.5)
        except BaseException as exc:
            self.error = exc


def partition_of(key: str, partitions: int = 4) -> int:
    """The partition the default partitioner (murmur2, as in aiokafka and Java) picks for a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def committed(system: System, topic: str, partition: int) -> int | None:
    """The workers' committed offset for one partition (the consumer group is the namespace)."""
    consumer = KafkaConsumer(
        bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"],
        group_id=system.namespace,
        enable_auto_commit=False,
    )
    try:
        offset = consumer.committed(TopicPartition(f"{system.namespace}.{topic}", partition))
        return None if offset is None else int(offset)
    finally:
        consumer.close()
