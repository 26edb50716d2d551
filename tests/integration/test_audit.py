"""Audit against the real broker: `runs show --audit`, `subscribers history`, `projection rebuild` and
`audit verify` (intact, then after a forged record is written to the run log)."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer
from sqlalchemy import select

from hamster.projection.sql import applied_offsets, make_engine, runs, stages
from streams.reader import read_topic
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

SUBSCRIBERS = {"replayable", "fixable"}


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    with System(kafka_bootstrap, tmp_path_factory.mktemp("audit"), "tests.pipelines.replay_catalog").running(
        SUBSCRIBERS
    ) as hamster:
        yield hamster


@pytest.fixture(scope="module")
def finished(system: System):
    """Six runs: five that succeed, one that fails at its second stage."""
    deliveries = []
    for i in range(5):
        payload = with_repo(load("pull_request", "opened.payload.json"), f"replay/a-{i}")
        deliveries.append(system.post("pull_request", payload)[1])
    failing = with_repo(load("pull_request", "opened.payload.json"), "fix/a")
    deliveries.append(system.post("pull_request", failing)[1])
    return [system.wait_finished(d, timeout=120)[0] for d in deliveries]


def run_log(system: System) -> list:
    return list(read_topic(system.kafka, f"{system.namespace}.run-events"))


def test_show_audit_lists_every_record_with_its_place_in_the_log(system: System, finished):
    """`runs show --audit` gives each record's time, stage, attempt, worker, digests, delivery and offset."""
    failed = finished[-1]
    result = system.cli("runs", "show", failed["run_id"][:8], "--audit", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["type"], r["stage"]) for r in rows] == [
        ("RunRequested", None),
        ("StageStarted", "prepare"),
        ("StageSucceeded", "prepare"),
        ("StageStarted", "flaky"),
        ("StageFailed", "flaky"),
        ("StagesSkipped", None),  # finish needed flaky
        ("RunFailed", "flaky"),
    ]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert {r["subscriber"] for r in rows} == {"fixable"}
    assert {r["delivery_id"] for r in rows} == {failed["delivery_id"]}
    assert len({r["subscriber_version"] for r in rows}) == 1
    assert rows[1]["input_digest"] and rows[2]["output_digest"] and rows[4]["error_digest"]
    assert rows[2]["duration_ms"] is not None and rows[2]["attempt"] == 1
    host_pid = rows[1]["worker"].rsplit(":", 1)
    assert len(host_pid) == 2 and host_pid[1].isdigit()
    where = {(r["position"]["topic"], r["position"]["partition"]) for r in rows}
    assert where == {(f"{system.namespace}.run-events", rows[0]["position"]["partition"])}
    offsets = [r["position"]["offset"] for r in rows]
    assert offsets == sorted(offsets)
    human = system.cli("runs", "show", failed["run_id"], "--audit")
    assert human.returncode == 0 and "StageFailed" in human.stdout


def test_subscriber_history_says_what_changed_and_when(system: System):
    """`subscribers history` lists each subscriber's publication and a later disable and enable."""
    assert system.cli("subscribers", "disable", "fixable").returncode == 0
    assert system.cli("subscribers", "enable", "fixable").returncode == 0

    def history():
        result = system.cli("subscribers", "history", "fixable", "--json")
        assert result.returncode == 0, result.stderr
        entries = json.loads(result.stdout)
        return entries if len(entries) == 3 else None

    entries = wait_until(history, 60, 1.0, what="three history entries")
    assert [(e["change"], e["enabled"]) for e in entries] == [
        ("SubscriberPublished", True),
        ("SubscriberDisabled", False),
        ("SubscriberEnabled", True),
    ]
    everything = json.loads(system.cli("subscribers", "history", "--json").stdout)
    assert {e["name"] for e in everything} == SUBSCRIBERS


def rows(engine) -> dict:
    with engine.connect() as conn:
        return {
            "runs": sorted(tuple(r) for r in conn.execute(select(runs).order_by(runs.c.run_id)).all()),
            "stages": sorted(tuple(r) for r in conn.execute(select(stages)).all()),
            "offsets": sorted(tuple(r) for r in conn.execute(select(applied_offsets)).all()),
        }


def test_projection_rebuild_equals_the_live_projection(system: System, finished, tmp_path):
    """Rebuilt from offset zero, the projection holds the live one's rows, row for row."""
    topic = f"{system.namespace}.run-events"
    ends: dict[int, int] = {}
    for record in run_log(system):
        ends[record.partition] = record.offset

    def caught_up():
        live = {p: o for t, p, o in rows(system.engine)["offsets"] if t == topic}
        return live == ends

    wait_until(caught_up, 60, what="the live projection to reach the end of the run log")
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    result = system.cli("projection", "rebuild", "--into", url, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == len(run_log(system))
    live = rows(system.engine)
    assert len(live["runs"]) == 6 and len(live["stages"]) == 13
    assert rows(make_engine(url)) == live
    # In place: the live tables are emptied and refilled to the same rows.
    in_place = system.cli("projection", "rebuild")
    assert in_place.returncode == 0, in_place.stderr
    assert "projection rebuilt" in in_place.stdout
    assert rows(system.engine) == live


def test_audit_verify_passes_then_names_a_forged_record(system: System, finished):
    """`audit verify` passes on the log as written and fails on a record altered and written to it."""
    intact = system.cli("audit", "verify", "--json")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    report = json.loads(intact.stdout)
    assert report["ok"] and report["records"] == len(run_log(system)) and report["unsealed"] == 0

    original = next(r for r in run_log(system) if b'"StageSucceeded"' in r.value)
    forged = json.loads(original.value)
    forged["output"] = {"forged": True}  # the content changes; the stored hash does not
    producer = KafkaProducer(bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"], acks="all")
    try:
        written = producer.send(original.topic, key=original.key, value=json.dumps(forged).encode()).get(30)
    finally:
        producer.close()

    broken = system.cli("audit", "verify", "--json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    [only] = json.loads(broken.stdout)["breaks"]
    assert only["run_id"] == forged["run_id"] and only["found"] == forged["hash"]
    assert (only["position"]["partition"], only["position"]["offset"]) == (written.partition, written.offset)
    assert only["expected"] != only["found"]
    human = system.cli("audit", "verify")
    assert human.returncode == 1 and "1 break(s)" in human.stdout
    # A window that starts inside the runs checks from there on, and still finds it.
    assert system.cli("audit", "verify", "--since", "1h").returncode == 1
