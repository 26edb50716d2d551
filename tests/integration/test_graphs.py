"""Pipelines as graphs and matrices end to end: real broker, real `hamster web`, two real workers of one slot
each, and the fake GitHub for the matrix's statuses."""

from __future__ import annotations

import json
import re

import pytest

from tests.fakegithub import FakeGitHub
from tests.integration.fault_tools import holders, run_log, running
from tests.integration.stage_tools import spans
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SUBSCRIBERS = {"diamond", "branches", "matrix", "fail-fast"}
INSTANCES = ["unit[python=3.11,db=sqlite]", "unit[python=3.12,db=sqlite]", "unit[python=3.12,db=postgres]"]


@pytest.fixture(scope="module")
def fake():
    with FakeGitHub() as server:
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("graphs"), "tests.pipelines.graphs")
    hamster.env.update(
        HAMSTER_WORKER_SLOTS="1",
        HAMSTER_TEST_STAGE_S="3",
        HAMSTER_GITHUB_API_URL=fake.url,
        HAMSTER_GITHUB_API_TOKEN=fake.token,
        HAMSTER_GITHUB_WRITE_INTERVAL_S="0.05",
    )
    with hamster.running(SUBSCRIBERS, workers=2):
        yield hamster


def post(system: System, repo: str) -> tuple[dict, dict]:
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    status, delivery = system.post("pull_request", payload)
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=120)
    return run, payload


def test_a_diamond_runs_its_middle_stages_side_by_side_and_joins_them(system: System):
    """fetch, then left and right at once on the two workers' slots, then join seeing both outputs."""
    run, _ = post(system, "graph/diamond")
    assert run["status"] == "succeeded", run
    stages = {s["name"]: s for s in run["stages"]}
    ran = {s.stage: s for s in spans(system) if s.run_id == run["run_id"]}
    left, right = ran["left"], ran["right"]
    # Overlap as happens-before: each started before the other ended, on different workers.
    assert left.start < right.end and right.start < left.end
    assert left.worker != right.worker
    assert ran["fetch"].end <= min(left.start, right.start)
    assert ran["join"].start >= max(left.end, right.end)
    assert stages["join"]["output"] == {"saw": {"fetch": None, "left": "left", "right": "right"}}
    assert stages["left"]["output"]["saw"] == ["fetch"]
    assert stages["join"]["needs"] == ["left", "right"]
    status, page = system.fetch(f"/runs/{run['run_id']}")
    assert status == 200
    columns = [
        re.findall(r'data-stage="([^"]+)" data-needs', c) for c in page.split('<div class="column">')[1:]
    ]
    assert columns == [["fetch"], ["left", "right"], ["join"]], "the run page draws the diamond"


def test_a_failure_skips_only_its_dependents(system: System):
    """breaks fails: after_break is skipped (and recorded so); the other branch runs to its end."""
    run, _ = post(system, "graph/branches")
    assert run["status"] == "failed"
    assert {s["name"]: s["status"] for s in run["stages"]} == {
        "breaks": "failed",
        "after_break": "skipped",
        "fetch": "succeeded",
        "after_ok": "succeeded",
    }
    assert {s["name"]: s["output"] for s in run["stages"]}["after_ok"] == {"saw": ["fetch"]}
    assert not [m for m in system.marks_list() if m[0] == run["run_id"] and m[1] == "after_break"]
    log = run_log(system, run["run_id"])
    [skipped] = [r for r in log if r.type == "StagesSkipped"]
    assert (skipped.stages, skipped.because) == (("after_break",), "breaks")
    assert log[-1].type == "RunFailed" and log[-1].stage == "breaks"
    shown = system.cli("runs", "show", run["run_id"])
    assert "skipped" in shown.stdout and "after_break" in shown.stdout


def test_a_matrix_runs_one_instance_per_combination_with_a_status_each(system: System, fake: FakeGitHub):
    """2 x 2 less one exclusion: three instances with their values in ctx.params, one GitHub status each,
    and the stage after them sees all three."""
    run, payload = post(system, "graph/matrix")
    assert run["status"] == "succeeded", run
    stages = {s["name"]: s for s in run["stages"]}
    assert list(stages) == [*INSTANCES, "summary"]
    assert stages["unit[python=3.12,db=postgres]"]["output"] == {
        "python": "3.12",
        "db": "postgres",
        "shared": "yes",
    }
    assert stages["summary"]["output"] == {"instances": sorted(INSTANCES)}
    sha = payload["pull_request"]["head"]["sha"]
    contexts = [f"hamster/matrix/{name}" for name in INSTANCES]

    def final() -> dict[str, str] | None:
        latest = {s["context"]: s["state"] for s in fake.statuses("graph/matrix", sha)}
        return latest if all(latest.get(c) == "success" for c in [*contexts, "hamster/matrix"]) else None

    latest = wait_until(final, 90, what="a success status per instance and for the run")
    assert sorted(latest) == sorted([*contexts, "hamster/matrix"])
    shown = json.loads(system.cli("runs", "show", run["run_id"], "--json").stdout)
    assert [s["name"] for s in shown["stages"]] == [*INSTANCES, "summary"]


def test_fail_fast_cancels_the_siblings_of_a_failed_instance(system: System):
    """The bad instance fails: its running siblings are stopped and skipped, the rest never start."""
    run, _ = post(system, "graph/fast")
    assert run["status"] == "failed"
    statuses = {s["name"]: s["status"] for s in run["stages"]}
    assert statuses == {
        "sometimes[python=bad]": "failed",
        "sometimes[python=3.11]": "skipped",
        "sometimes[python=3.12]": "skipped",
        "summary": "skipped",
    }
    notes = [n for n in holders(system) if n[0] == run["run_id"]]
    for note in notes:  # a sibling that had started is stopped: its child process is gone
        wait_until(lambda pid=int(note[4]): not running(pid), 60, what=f"{note[1]} to be stopped")
    [skipped] = [r for r in run_log(system, run["run_id"]) if r.type == "StagesSkipped"]
    assert skipped.reason == "fail_fast: stage sometimes[python=bad] failed"
    assert not [r for r in run_log(system, run["run_id"]) if r.type == "StageSucceeded"]
