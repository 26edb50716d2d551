"""A worker SIGKILLed mid-stage: the stage runs again as a new attempt, and nothing runs twice.

The other worker takes the dead one's partitions once its Kafka session times out (15 s here,
``HAMSTER_KAFKA_SESSION_TIMEOUT_S``). The first test once failed half the time: the new owner never read
the interrupted stage request, at the start of a partition nobody had committed (``streams.transport``).
The second kills a worker between appending a record and its runs table's changelog following it
(``RunRecorder.catch_up``).
"""

from __future__ import annotations

import itertools

import pytest

from tests.integration.fault_tools import committed, holders, partition_of, run_log, running, worker_named
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("crash"), "tests.pipelines.faults")
    hamster.env["HAMSTER_KAFKA_SESSION_TIMEOUT_S"] = "15"
    with hamster.running({"crash", "cut"}, workers=2):
        yield hamster


def test_sigkill_mid_stage_runs_it_again_as_attempt_2(system: System):
    """SIGKILL the worker running a stage: its attempt dies with it; after the restart the stage runs as
    attempt 2, the run completes, the run log shows both attempts and the next stage runs once."""
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), "faults/crash")
    )
    assert status == 202
    [note] = wait_until(lambda: holders(system), 300, 0.5, what="the stage to start")
    run_id, stage, attempt, worker_pid, attempt_pid = note
    assert (stage, attempt) == ("hold", "1")
    victim = worker_named(system, int(worker_pid))
    # Concurrency 1 per agent: the webhook's offset gets committed, the unfinished stage request's does not.
    wait_until(
        lambda: committed(system, "events", partition_of("faults/crash")) is not None, 120, what="a commit"
    )
    assert committed(system, "stage.hold", partition_of(run_id)) is None

    system.kill(victim)
    # The attempt's process goes with its worker: no orphan keeps running beside the retry.
    wait_until(lambda: not running(int(attempt_pid)), 30, what="the cut-off attempt to end")
    # The other worker takes the dead one's partitions once its session times out.

    [run] = system.wait_finished(delivery, timeout=600)
    assert run["status"] == "succeeded", run
    assert [(s["name"], s["status"], s["attempt"]) for s in run["stages"]] == [
        ("hold", "succeeded", 2),
        ("follow", "succeeded", 1),
    ]
    log = run_log(system, run_id)
    assert [(r.type, getattr(r, "stage", None), getattr(r, "attempt", None)) for r in log][1:] == [
        ("StageStarted", "hold", 1),
        ("StageStarted", "hold", 2),
        ("StageSucceeded", "hold", 2),
        ("StageStarted", "follow", 1),
        ("StageSucceeded", "follow", 1),
        ("RunSucceeded", None, None),
    ]
    assert [r.seq for r in log] == list(range(1, len(log) + 1))  # one record per step, none written twice
    assert [(s, a) for r, s, a in system.marks_list() if r == run_id] == [
        ("hold", 1),
        ("hold", 2),
        ("follow", 1),
    ]
    system.start_worker(victim)  # two workers again for the next test
    system.wait_workers_ready({"crash", "cut"})


def test_sigkill_between_the_log_and_the_table_writes_nothing_twice(system: System):
    """The stage kills its own worker right after its StageStarted was appended, before the runs table's
    changelog caught up. The next owner brings the state up to the log first: the stage runs as attempt 2,
    every record is written once, the chain holds, and no stage runs twice."""
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), "faults/cut")
    )
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=300)
    assert run["status"] == "succeeded", run
    log = run_log(system, run["run_id"])
    assert [(r.type, getattr(r, "stage", None), getattr(r, "attempt", None)) for r in log][1:] == [
        ("StageStarted", "quick", 1),
        ("StageSucceeded", "quick", 1),
        ("StageStarted", "cut", 1),
        ("StageStarted", "cut", 2),
        ("StageSucceeded", "cut", 2),
        ("StageStarted", "follow", 1),
        ("StageSucceeded", "follow", 1),
        ("RunSucceeded", None, None),
    ]
    assert [r.seq for r in log] == list(range(1, len(log) + 1))
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(log))
    assert [(s, a) for r, s, a in system.marks_list() if r == run["run_id"]] == [
        ("quick", 1),
        ("cut", 1),
        ("cut", 2),
        ("follow", 1),
    ]
