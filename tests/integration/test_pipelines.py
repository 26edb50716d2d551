"""Pipelines end to end: real broker, real `hamster web`, two real `hamster worker` processes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.integration.system import System, wait_until
from tests.samples import branch_push, load, with_repo

pytestmark = pytest.mark.integration

SUBSCRIBERS = {"three-stage", "fails", "twin-a", "twin-b", "toggle", "toggle-witness", "bad-output"}


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    with System(kafka_bootstrap, tmp_path_factory.mktemp("pipelines"), "tests.pipelines.catalog").running(
        SUBSCRIBERS, workers=2
    ) as hamster:
        yield hamster


def pr(repo: str, action: str = "opened", number: int | None = None) -> dict:
    """The recorded pull_request sample, moved to ``repo`` (and given ``action`` / ``number``)."""
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    payload["action"] = action
    if number is not None:
        payload["number"] = payload["pull_request"]["number"] = number
    return payload


def test_three_stages_share_outputs(system: System):
    """A signed pull_request webhook runs three stages in order; stage 3 reads stages 1 and 2."""
    status, delivery = system.post("pull_request", pr("acme/three"))
    assert status == 202
    [run] = system.wait_finished(delivery)
    assert run["status"] == "succeeded", run
    assert [(s["name"], s["status"], s["attempt"]) for s in run["stages"]] == [
        ("first", "succeeded", 1),
        ("second", "succeeded", 1),
        ("third", "succeeded", 1),
    ]
    assert run["stages"][2]["output"] == {
        "sum": 3,
        "seen": ["first", "second"],
        "python": "3.11",
        "pr": pr("acme/three")["number"],
    }
    assert run["stages"][0]["output"]["repo"] == "acme/three"
    shown = system.cli("runs", "show", run["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "succeeded"
    human = system.cli("runs", "show", run["run_id"][:8])
    assert "succeeded" in human.stdout and "third" in human.stdout


def test_failing_stage_fails_the_run_and_stops_it(system: System):
    """A stage that raises fails the run; the stage after it never runs, and is recorded skipped."""
    status, delivery = system.post("pull_request", pr("acme/fails"))
    assert status == 202
    [run] = system.wait_finished(delivery)
    assert run["status"] == "failed"
    first, boom, third = run["stages"]
    assert first["status"] == "succeeded"
    assert boom["status"] == "failed"
    assert boom["error"]["type"] == "RuntimeError" and boom["error"]["message"] == "stage two exploded"
    assert "boom" in boom["error"]["traceback"]
    assert third["status"] == "skipped"
    assert [s for r, s, _ in system.marks_list() if r == run["run_id"]] == ["first", "boom"]
    assert "boom" in (run["reason"] or "")


def test_output_that_is_not_json_fails_the_stage(system: System):
    """A task returning something JSON cannot hold fails its stage with a clear message."""
    _, delivery = system.post("pull_request", pr("acme/badout"))
    [run] = system.wait_finished(delivery)
    assert run["status"] == "failed"
    assert "not JSON-serialisable" in run["stages"][0]["error"]["message"]
    assert run["stages"][1]["status"] == "skipped"


def test_redelivery_makes_no_second_run(system: System):
    """The same X-GitHub-Delivery twice gives one run."""
    payload = pr("acme/three", number=7001)
    status1, delivery = system.post("pull_request", payload)
    status2, _ = system.post("pull_request", payload, delivery=delivery)
    assert (status1, status2) == (202, 202)
    # A later webhook on the same repository lands on the same partition, after the redelivery.
    _, barrier = system.post("pull_request", pr("acme/three", number=7002))
    system.wait_finished(barrier)
    system.wait_finished(delivery)
    assert len(system.runs_for(delivery)) == 1


def test_two_subscribers_make_two_runs(system: System):
    """An event matching two subscribers starts one run for each."""
    _, delivery = system.post("push", with_repo(branch_push("main"), "acme/twins"))
    runs = system.wait_finished(delivery, count=2)
    assert sorted(r["subscriber"] for r in runs) == ["twin-a", "twin-b"]
    assert all(r["status"] == "succeeded" for r in runs)
    assert len({r["run_id"] for r in runs}) == 2


def test_non_matching_event_makes_no_run(system: System):
    """An event no subscriber wants starts nothing."""
    _, quiet = system.post("pull_request", pr("acme/three", action="closed"))
    _, other_branch = system.post("push", with_repo(branch_push("dev"), "acme/twins"))
    _, barrier = system.post("pull_request", pr("acme/three"))  # same partition as the first, after it
    system.wait_finished(barrier)
    system.wait_finished(other_branch)  # twin-a has no branch filter; twin-b wants main only
    assert system.runs_for(quiet) == []
    assert [r["subscriber"] for r in system.runs_for(other_branch)] == ["twin-a"]


def test_disable_stops_new_runs_on_every_worker(system: System):
    """`hamster subscribers disable` reaches every worker without a restart; enable brings it back."""
    listed = system.cli("subscribers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {s["spec"]["name"] for s in json.loads(listed.stdout)} == SUBSCRIBERS
    result = system.cli("subscribers", "disable", "toggle")
    assert result.returncode == 0, result.stderr
    for worker in ("worker-1", "worker-2"):
        wait_until(
            lambda w=worker: system.worker_view(w)["toggle"]["enabled"] is False,
            30,
            what=f"{worker} to see toggle disabled",
        )
    comment = with_repo(load("issue_comment", "created.payload.json"), "acme/toggle")
    _, delivery = system.post("issue_comment", comment)
    runs = system.wait_finished(delivery)  # the witness subscriber matches the same delivery
    assert [r["subscriber"] for r in runs] == ["toggle-witness"]

    assert system.cli("subscribers", "enable", "toggle").returncode == 0
    for worker in ("worker-1", "worker-2"):
        wait_until(lambda w=worker: system.worker_view(w)["toggle"]["enabled"] is True, 30)
    _, delivery = system.post("issue_comment", comment)
    assert sorted(r["subscriber"] for r in system.wait_finished(delivery, count=2)) == [
        "toggle",
        "toggle-witness",
    ]
    unknown = system.cli("subscribers", "disable", "nope")
    assert unknown.returncode != 0 and "no subscriber named 'nope'" in unknown.stderr


def test_fifty_webhooks_two_workers_fifty_runs(system: System):
    """50 webhooks over 10 repositories, two workers: exactly 50 completed runs, none lost, none twice."""
    deliveries = []
    for i in range(50):
        status, delivery = system.post("pull_request", pr(f"load/repo-{i % 10}", number=9000 + i))
        assert status == 202
        deliveries.append(delivery)
    wanted = set(deliveries)

    def all_done():
        runs = [r for r in system.runs(subscriber="three-stage") if r["delivery_id"] in wanted]
        return runs if len(runs) == 50 and all(r["status"] == "succeeded" for r in runs) else None

    runs = wait_until(all_done, 180, 1.0, what="50 succeeded runs")
    assert Counter(r["delivery_id"] for r in runs) == Counter(deliveries)
    run_ids = {r["run_id"] for r in runs}
    executed = Counter((r, s) for r, s, _ in system.marks_list() if r in run_ids)
    assert len(executed) == 150 and set(executed.values()) == {1}
    assert {r["repo"] for r in runs} == {f"load/repo-{i}" for i in range(10)}
