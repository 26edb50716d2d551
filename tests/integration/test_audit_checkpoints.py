"""Signed audit checkpoints against the real broker: workers checkpoint the run log as it grows, and
`audit verify` finds what the hash chain alone cannot — a forged record re-sealed with its successors,
records reordered, a cut-off tail — in tampered copies of the log (a namespace of their own, with the
checkpoints copied as they are), while the untouched log verifies clean."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaProducer

from hamster.kafka_access import kafka_python_options
from hamster.runs.audit import chain_hash
from hamster.runs.audit_checkpoints import decode_checkpoint
from hamster.settings import load_settings
from streams.admin import ensure_topics
from streams.reader import read_topic
from streams.topics import topic_specs
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

SUBSCRIBERS = {"replayable", "fixable"}
KEY = secrets.token_hex(32)
Record = tuple[bytes | None, bytes]  # key, value


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory) -> Iterator[System]:
    env = {
        "HAMSTER_AUDIT_KEY": KEY,
        "HAMSTER_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        "HAMSTER_AUDIT_CHECKPOINT_RECORDS": "4",
    }
    hamster = System(
        kafka_bootstrap, tmp_path_factory.mktemp("checkpoints"), "tests.pipelines.replay_catalog", 2, env
    )
    with hamster.running(SUBSCRIBERS) as running:
        yield running


def verify(system: System, namespace: str | None = None, key: str | None = KEY) -> tuple[int, dict[str, Any]]:
    env = {**system.env, "HAMSTER_NAMESPACE": namespace or system.namespace}
    env.pop("HAMSTER_AUDIT_KEY")
    if key is not None:
        env["HAMSTER_AUDIT_KEY"] = key
    answer = System.run_cli(env, "audit", "verify", "--json")
    assert answer.returncode in (0, 1), answer.stderr
    return answer.returncode, json.loads(answer.stdout)


@pytest.fixture(scope="module")
def checkpointed(system: System) -> dict[str, Any]:
    """Four finished runs, and checkpoints covering every record of the run log."""
    deliveries = []
    for i in range(3):
        payload = with_repo(load("pull_request", "opened.payload.json"), f"replay/c-{i}")
        deliveries.append(system.post("pull_request", payload)[1])
    deliveries.append(
        system.post("pull_request", with_repo(load("pull_request", "opened.payload.json"), "fix/c"))[1]
    )
    for delivery in deliveries:
        system.wait_finished(delivery, timeout=120)

    def covered() -> dict[str, Any] | None:
        _, body = verify(system)
        parts = body["checkpoints"]["partitions"]
        done = parts and all(p["uncovered"] == 0 for p in parts) and body["records"] >= 20
        return body if done else None

    return dict(wait_until(covered, 60, 1.0, what="checkpoints covering the whole run log"))


def partitions_of(system: System) -> dict[int, list[Record]]:
    found: dict[int, list[Record]] = {}
    for r in read_topic(system.kafka, f"{system.namespace}.run-events"):
        found.setdefault(r.partition, []).append((r.key, r.value))
    return found


def tampered_copy(system: System, change: Callable[[dict[int, list[Record]]], None]) -> str:
    """A new namespace holding the run log changed by ``change`` and the checkpoints as they are."""
    namespace = "x" + uuid.uuid4().hex[:10]
    settings = load_settings(kafka_bootstrap=system.kafka.bootstrap, namespace=namespace, partitions=2)
    ensure_topics(settings.kafka, topic_specs(settings))
    log = partitions_of(system)
    change(log)
    producer = KafkaProducer(
        **kafka_python_options(system.kafka), acks="all", max_in_flight_requests_per_connection=1
    )
    try:
        for partition, records in sorted(log.items()):
            for key, value in records:
                producer.send(f"{namespace}.run-events", key=key, value=value, partition=partition).get(30)
        for r in read_topic(system.kafka, f"{system.namespace}.audit-checkpoints"):
            producer.send(f"{namespace}.audit-checkpoints", key=r.key, value=r.value, partition=0).get(30)
    finally:
        producer.close()
    return namespace


def reseal_run(records: list[Record], run_key: bytes, start: int) -> None:
    """Recompute the hash chain of one run from record ``start`` on, as a forger without the key can."""
    prev = None
    for i, (key, value) in enumerate(records):
        if key != run_key or i < start:
            if key == run_key and b'"LeaseRenewed"' not in value:
                prev = json.loads(value)["hash"]
            continue
        content = json.loads(value)
        if content.get("type") == "LeaseRenewed":
            continue
        content["prev_hash"] = prev if content["seq"] > 1 else ""
        content["hash"] = chain_hash(content["prev_hash"], content)
        prev = content["hash"]
        records[i] = (key, json.dumps(content).encode())


def test_the_untouched_log_matches_its_checkpoints(system: System, checkpointed):
    """Every partition is checkpointed by the workers; the log as written verifies clean."""
    code, body = verify(system)
    assert code == 0 and body["ok"], body
    checks = body["checkpoints"]
    assert checks["checked"] and checks["findings"] == []
    assert sum(p["checkpoints"] for p in checks["partitions"]) >= 2
    assert sum(p["checked"] for p in checks["partitions"]) == body["records"]
    human = System.run_cli(system.env, "audit", "verify")
    assert human.returncode == 0 and "the log matches its checkpoints" in human.stdout


def test_a_forged_record_resealed_passes_the_chain_but_not_the_checkpoints(system: System, checkpointed):
    """A stage's output forged and its run's chain recomputed: no chain break, but the checkpoint of its
    range no longer matches (exit 1, "changed")."""

    def forge(log: dict[int, list[Record]]) -> None:
        for records in log.values():
            for i, (key, value) in enumerate(records):
                if b'"StageSucceeded"' in value:
                    content = json.loads(value)
                    content["output"] = {"forged": True}
                    records[i] = (key, json.dumps(content).encode())
                    reseal_run(records, key or b"", i)
                    return

    code, body = verify(system, tampered_copy(system, forge))
    assert code == 1
    assert body["breaks"] == []  # the re-sealed chain is consistent: the chain alone cannot tell
    kinds = {f["kind"] for f in body["checkpoints"]["findings"]}
    assert kinds == {"changed"}, body["checkpoints"]["findings"]


def test_reordered_records_are_reported(system: System, checkpointed):
    """Two neighbouring records of different runs swapped: each run's chain is intact, the order is not."""

    ends = {
        (c.partition, c.offset)
        for r in read_topic(system.kafka, f"{system.namespace}.audit-checkpoints")
        if (c := decode_checkpoint(r.value)) is not None
    }

    def swap(log: dict[int, list[Record]]) -> None:
        for partition, records in log.items():
            for i in range(len(records) - 1):
                # Within one checkpoint's range (offsets are list positions: the log starts at 0), so the
                # range holds the same records, in another order.
                if records[i][0] != records[i + 1][0] and (partition, i) not in ends:
                    records[i], records[i + 1] = records[i + 1], records[i]
                    return
        raise AssertionError("no neighbouring records of two runs")

    code, body = verify(system, tampered_copy(system, swap))
    assert code == 1 and body["breaks"] == []
    assert [f["kind"] for f in body["checkpoints"]["findings"]] == ["reordered"]


def test_a_cut_off_tail_is_reported(system: System, checkpointed):
    """The newest records of a partition gone: the log ends before its newest checkpoint."""

    def cut(log: dict[int, list[Record]]) -> None:
        partition = max(log, key=lambda p: len(log[p]))
        del log[partition][-3:]

    code, body = verify(system, tampered_copy(system, cut))
    assert code == 1 and body["breaks"] == []  # whole runs' tails are gone: nothing left breaks a chain
    [finding] = body["checkpoints"]["findings"]
    assert finding["kind"] == "cut-off" and "3 record(s) cut off" in finding["message"]


def test_a_checkpoint_signed_with_another_key_is_reported(system: System, checkpointed):
    """Verifying with another key: every checkpoint is reported as not ours, and nothing passes as checked."""
    code, body = verify(system, key=secrets.token_hex(32))
    assert code == 1
    kinds = {f["kind"] for f in body["checkpoints"]["findings"]}
    assert kinds == {"bad-signature"}


def test_without_the_key_verify_says_what_it_cannot_check(system: System, checkpointed):
    """No HAMSTER_AUDIT_KEY: the chains are checked, the checkpoints are not, and the output says so."""
    code, body = verify(system, key=None)
    assert code == 0 and not body["checkpoints"]["checked"]
    assert "HAMSTER_AUDIT_KEY is not set" in body["checkpoints"]["skipped"]
    env = {k: v for k, v in system.env.items() if k != "HAMSTER_AUDIT_KEY"}
    human = System.run_cli(env, "audit", "verify")
    assert human.returncode == 0 and "cut-off tail cannot be seen" in human.stdout.replace("\n", " ")
