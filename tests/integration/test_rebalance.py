"""Rebalances never wait for stages: a worker joins and one leaves while stages longer than the Kafka
session run, and a run sent meanwhile finishes before they do. Each stage runs exactly once."""

from __future__ import annotations

import pytest

from tests.integration.stage_tools import executions, spans
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("rebalance"), "tests.pipelines.slots")
    # Stages of 15 s, longer than the 6 s session (and the heartbeat-based rebalance) the workers use.
    hamster.env.update(
        HAMSTER_WORKER_SLOTS="2", HAMSTER_TEST_STAGE_S="15", HAMSTER_KAFKA_SESSION_TIMEOUT_S="6"
    )
    with hamster.running({"long", "quick"}, workers=2):
        yield hamster


def test_join_and_leave_while_long_stages_run(system: System):
    """Three 15-second stages run; a third worker joins and the first is asked to stop: the quick run sent
    then finishes while the long stages still run, the stopping worker lets its stages finish and exits,
    and every stage ran exactly once."""
    payload = load("pull_request", "opened.payload.json")
    long_runs = [system.post("pull_request", with_repo(payload, f"slots/long{n}"))[1] for n in range(3)]
    wait_until(lambda: len(system.marks_list()) == 3, 60, what="the three long stages to start")
    system.start_worker("worker-3")
    leaving = system.procs["worker-1"]
    leaving.terminate()
    status, quick = system.post("pull_request", with_repo(payload, "quick/now"))
    assert status == 202
    [quick_run] = system.wait_finished(quick, timeout=60)
    assert quick_run["status"] == "succeeded"
    runs = [run for d in long_runs for run in system.wait_finished(d, timeout=120)]
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    ids = {r["run_id"] for r in runs}
    assert set(executions(system, ids).values()) == {1}, "no long stage ran twice"
    done = {s.run_id: s for s in spans(system)}
    assert done[quick_run["run_id"]].end < min(done[i].end for i in ids), "the quick run waited for nobody"
    assert leaving.wait(timeout=60) == 0, "the stopping worker finished its stages and exited cleanly"
