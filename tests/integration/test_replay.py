"""Replay against the real broker: `hamster replay events` (and its dry run) and `hamster replay run`, with a
real `hamster web` and a real `hamster worker`."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from sqlalchemy import select

from hamster import ids
from hamster.projection.sql import runs as runs_table
from hamster.runs.events import RunRequested, decode_run_event
from streams.reader import read_topic
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

SUBSCRIBERS = {"replayable", "fixable"}


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    with System(kafka_bootstrap, tmp_path_factory.mktemp("replay"), "tests.pipelines.replay_catalog").running(
        SUBSCRIBERS
    ) as hamster:
        yield hamster


def pr(repo: str, number: int, action: str = "opened") -> dict:
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    payload["action"] = action
    payload["number"] = payload["pull_request"]["number"] = number
    return payload


def requested(system: System) -> dict[str, RunRequested]:
    """Every RunRequested of the run log, by run id."""
    records = read_topic(system.kafka, f"{system.namespace}.run-events")
    decoded = (decode_run_event(r.value) for r in records if b'"RunRequested"' in r.value)
    return {r.run_id: r for r in decoded if isinstance(r, RunRequested)}


def states(system: System) -> dict[str, dict]:
    """Every run's folded state, from the projection (it carries the replay links)."""
    with system.engine.connect() as conn:
        return {
            row.run_id: row.state for row in conn.execute(select(runs_table.c.run_id, runs_table.c.state))
        }


@pytest.fixture(scope="module")
def window(system: System):
    """20 webhooks over five repositories, all run; then one more after the window closes."""
    since = datetime.now(UTC).isoformat()
    deliveries = []
    for i in range(20):
        status, delivery = system.post("pull_request", pr(f"replay/r-{i % 5}", 100 + i))
        assert status == 202
        deliveries.append(delivery)
    until = datetime.now(UTC).isoformat()
    _, outside = system.post("pull_request", pr("replay/r-0", 999))
    for delivery in [*deliveries, outside]:
        [run] = system.wait_finished(delivery, timeout=120)
        assert run["status"] == "succeeded", run
    return since, until, deliveries, outside


def test_dry_run_with_another_module_lists_the_difference_and_starts_nothing(system: System, window):
    """A dry run against a changed subscribers module lists exactly the runs it would add and drop."""
    since, until, deliveries, _ = window
    before = len(system.runs())
    result = system.cli(
        "replay",
        "events",
        "--since",
        since,
        "--until",
        until,
        "--dry-run",
        "--subscribers",
        "tests.pipelines.replay_catalog_alt",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["events"] == 20
    # replay/r-0 and r-1 keep their runs (8); r-2, r-3, r-4 lose theirs (12); newcomer takes r-4 (4).
    assert diff["unchanged"] == 8
    gone = {(r["delivery_id"], r["subscriber"]) for r in diff["gone"]}
    assert gone == {(d, "replayable") for i, d in enumerate(deliveries) if i % 5 in (2, 3, 4)}
    new = {(r["delivery_id"], r["subscriber"]) for r in diff["new"]}
    assert new == {(d, "newcomer") for i, d in enumerate(deliveries) if i % 5 == 4}
    # Against the live subscribers nothing differs.
    same = system.cli("replay", "events", "--since", since, "--until", until, "--dry-run", "--json")
    assert same.returncode == 0, same.stderr
    assert (json.loads(same.stdout)["new"], json.loads(same.stdout)["gone"]) == ([], [])
    human = system.cli(
        "replay", "events", "--since", since, "--until", until, "--dry-run", "--subscribers",
        "tests.pipelines.replay_catalog_alt",
    )  # fmt: skip
    assert "would start, did not: 4 run(s)" in human.stdout and "did start, would not: 12" in human.stdout
    assert len(system.runs()) == before


def test_replaying_a_window_starts_new_runs_linked_to_the_originals(system: System, window):
    """20 webhooks replayed from a time window: 20 new runs, each linked to its original's run."""
    since, until, deliveries, outside = window
    window_args = ["--since", since, "--until", until, "--repo", "replay/*"]
    result = system.cli("replay", "events", *window_args, "--json", "--wait", "120", timeout=240)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["events_replayed"], summary["runs_expected"], summary["runs_started"]) == (20, 20, 20)
    links = {r["delivery_id"]: r["replay_of"] for r in summary["replays"]}
    assert sorted(links.values()) == sorted(deliveries)  # the webhook after --until is not replayed
    assert outside not in links.values()
    for replay_id in links:
        [run] = system.wait_finished(replay_id, timeout=120)
        assert run["status"] == "succeeded", run
    folded = states(system)
    replayed = [s for s in folded.values() if s["event"]["delivery_id"] in links]
    assert len(replayed) == 20 and all(s["replay"] for s in replayed)
    originals = {ids.run_id(d, "replayable") for d in deliveries}
    assert {s["original_run_id"] for s in replayed} == originals
    assert originals <= set(folded)
    assert not set(links) & {s["event"]["delivery_id"] for s in folded.values() if s["run_id"] in originals}
    # Replays write nothing to GitHub: the reporter skips runs whose RunRequested says report=False.
    records = requested(system)
    assert {
        (records[s["run_id"]].report, records[s["run_id"]].replay_of in deliveries) for s in replayed
    } == {(False, True)}
    assert all(records[r].report for r in originals)


def test_replaying_one_delivery_by_id(system: System, window):
    """--delivery picks webhooks by id; --report lets its run report; the summary counts events and runs."""
    _, _, deliveries, _ = window
    original = ids.run_id(deliveries[0], "replayable")

    def linked() -> int:
        return sum(s["original_run_id"] == original for s in states(system).values())

    before = linked()
    result = system.cli(
        "replay", "events", "--delivery", deliveries[0], "--report", "--wait", "120", timeout=240
    )
    assert result.returncode == 0, result.stderr
    assert "1 replayed; 1 run(s) started (of 1 expected)" in result.stdout
    wait_until(lambda: linked() == before + 1, 60, what="the replayed run in the projection")
    reporting = [r for r in requested(system).values() if r.original_run_id == original and r.report]
    assert len(reporting) == 1 and reporting[0].replay  # --report: this replay may write to GitHub


def test_a_run_failed_at_stage_two_reruns_from_it_without_stage_one(system: System):
    """After the task is fixed, `replay run --from-stage` succeeds and stage 1 does not run again."""
    _, delivery = system.post("pull_request", pr("fix/app", 7))
    [original] = system.wait_finished(delivery)
    assert original["status"] == "failed"
    assert [s["status"] for s in original["stages"]] == ["succeeded", "failed", "skipped"]
    refused = system.cli("replay", "run", original["run_id"], "--from-stage", "finish")
    assert refused.returncode != 0 and "stage flaky did not succeed" in refused.stderr

    (system.home / "marks.txt.fixed").touch()  # the fix
    result = system.cli("replay", "run", original["run_id"], "--from-stage", "flaky", "--json")
    assert result.returncode == 0, result.stderr
    rerun = json.loads(result.stdout)
    assert (rerun["original_run_id"], rerun["attempt"], rerun["reused"]) == (
        original["run_id"],
        2,
        ["prepare"],
    )

    def finished():
        run = next((r for r in system.runs() if r["run_id"] == rerun["run_id"]), None)
        return run if run and run["status"] in {"succeeded", "failed"} else None

    run = wait_until(finished, 120, what="the rerun to finish")
    assert run["status"] == "succeeded", run
    assert run["delivery_id"] == delivery
    # Stage 1's output is the original run's, read from the log; stage 1 ran once, for the original only.
    assert run["stages"][2]["output"] == {"prepared_by": original["run_id"], "flaky": {"fixed": True}}
    marks = Counter((r, s) for r, s, _ in system.marks_list())
    assert marks[(original["run_id"], "prepare")] == 1
    assert [s for r, s, _ in system.marks_list() if r == rerun["run_id"]] == ["flaky", "finish"]
    state = states(system)[rerun["run_id"]]
    assert state["attempt"] == 2 and state["stages"][0]["reused"] is True

    # A rerun of the rerun is the third attempt of the same first run.
    again = system.cli("replay", "run", rerun["run_id"], "--from-stage", "3", "--json")
    assert again.returncode == 0, again.stderr
    third = json.loads(again.stdout)
    assert (third["original_run_id"], third["attempt"], third["reused"]) == (
        original["run_id"],
        3,
        ["flaky", "prepare"],
    )
    done = wait_until(
        lambda: next((r for r in system.runs() if r["run_id"] == third["run_id"] and r["finished_at"]), None),
        120,
        what="the third attempt to finish",
    )
    assert done["status"] == "succeeded"
    assert [s for r, s, _ in system.marks_list() if r == third["run_id"]] == ["finish"]


FACTS = ("subscriber", "status", "reason", "repo", "event", "action", "sha", "branch", "pr_number")


def test_replayed_runs_equal_their_originals_in_the_originals_order(system: System, window):
    """A batched replay of a window: each replayed run has its original's facts, stages and outputs, and
    the copies sit in the events topic in the originals' order, partition by partition."""
    since, until, deliveries, _ = window
    result = system.cli(
        "replay", "events", "--since", since, "--until", until, "--repo", "replay/r-1",
        "--repo", "replay/r-3", "--json", "--wait", "120", timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    links = {r["delivery_id"]: r["replay_of"] for r in json.loads(result.stdout)["replays"]}
    assert sorted(links.values()) == sorted(d for i, d in enumerate(deliveries) if i % 5 in (1, 3))
    for replay_id, original_id in links.items():
        [copy] = system.wait_finished(replay_id, timeout=120)
        [original] = system.runs_for(original_id)
        assert {k: copy[k] for k in FACTS} == {k: original[k] for k in FACTS}
        assert [(s["name"], s["status"], s["output"]) for s in copy["stages"]] == [
            (s["name"], s["status"], s["output"]) for s in original["stages"]
        ]
    by_partition: dict[int, list[tuple[str, str | None]]] = {}
    for record in read_topic(system.kafka, f"{system.namespace}.events"):
        envelope = json.loads(record.value)
        by_partition.setdefault(record.partition, []).append((envelope["delivery_id"], envelope["replay_of"]))
    for records in by_partition.values():
        originals = [d for d, _ in records if d in set(links.values())]
        copies = [of for d, of in records if d in links]
        assert copies == originals


def _value(value):
    """A column's value as both databases can agree on it: sqlite hands back naive UTC datetimes and
    PostgreSQL aware ones; JSON is compared by content."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _rows(engine) -> dict[str, list]:
    from hamster.projection.sql import applied_offsets, stages

    with engine.connect() as conn:
        return {
            t.name: [tuple(map(_value, r)) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in (runs_table, stages, applied_offsets)
        }


def test_a_rebuilt_projection_equals_the_live_one(system: System, window, postgres_server, tmp_path):
    """`hamster projection rebuild` (batched) into sqlite and into PostgreSQL gives exactly the rows the
    worker's projection agent wrote live, record by record: runs, stages (failed, reused, replayed ones
    included) and applied offsets."""
    from hamster.projection.sql import make_engine

    for url in (
        f"sqlite:///{tmp_path}/rebuilt.db",
        postgres_server.create_database("rebuilt" + system.namespace),
    ):
        result = system.cli("projection", "rebuild", "--into", url, "--json", timeout=120)
        assert result.returncode == 0, result.stderr
        rebuilt = make_engine(url)
        try:
            expected = _rows(rebuilt)
            assert len(expected["runs"]) >= 21 and json.loads(result.stdout)["applied"] > 0
            # The live agent may still be applying the last records: wait for it, then compare everything.
            with contextlib.suppress(AssertionError):
                wait_until(lambda e=expected: _rows(system.engine) == e, 60, what="the live projection")
            live = _rows(system.engine)
            differ = {t: sorted(set(map(repr, live[t])) ^ set(map(repr, expected[t])))[:6] for t in live}
            assert live == expected, differ
        finally:
            rebuilt.dispose()


def test_replay_says_when_the_range_is_older_than_the_topic_holds(system: System, window):
    """Once records are deleted (as retention does), a replay of the older range says so clearly."""
    _, _, deliveries, _ = window
    original = ids.run_id(deliveries[0], "replayable")
    topic = f"{system.namespace}.events"
    consumer = KafkaConsumer(bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"])
    admin = KafkaAdminClient(bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"])
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        # What retention does when it drops old segments: the log start moves past the records.
        admin.delete_records(consumer.end_offsets(partitions))
    finally:
        admin.close()
        consumer.close()
    status, newest = system.post("pull_request", pr("replay/r-0", 500))
    assert status == 202
    system.wait_finished(newest, timeout=120)

    warned = system.cli("replay", "events", "--since", "1d", "--dry-run", "--json")
    assert warned.returncode == 0, warned.stderr
    assert "only holds records from" in warned.stderr and "HAMSTER_RETENTION_DAYS" in warned.stderr
    assert json.loads(warned.stdout)["events"] == 1
    gone = system.cli("replay", "events", "--since", "2d", "--until", "1d")
    assert gone.returncode != 0 and "cannot be replayed" in gone.stderr
    rerun = system.cli("replay", "run", original)
    assert rerun.returncode != 0 and "no longer in the events topic" in rerun.stderr
