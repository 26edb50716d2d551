"""Timeouts stop the work, retries back off and are recorded, and a non-retryable error is not retried."""

from __future__ import annotations

import pytest

from tests.integration.fault_tools import holders, run_log, running
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    with System(kafka_bootstrap, tmp_path_factory.mktemp("timeouts"), "tests.pipelines.faults").running(
        {"timeout", "flaky", "refuses", "async-timeout"}
    ) as hamster:
        yield hamster


def post(system: System, repo: str) -> str:
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), repo)
    )
    assert status == 202
    return delivery


def attempts(system: System, run_id: str) -> list[tuple[str, str, int, bool | None, str | None]]:
    """(type, stage, attempt, retrying, error type) of each stage record of the run, in log order."""
    return [
        (r.type, r.stage, r.attempt, getattr(r, "retrying", None), getattr(r, "error_type", None))
        for r in run_log(system, run_id)
        if r.type in {"StageStarted", "StageSucceeded", "StageFailed"}
    ]


def test_timeout_kills_the_task_and_what_it_started(system: System):
    """A blocking task past its timeout is killed with the process it started, recorded as TaskTimeout,
    retried once as configured, and the run fails without reaching the next stage."""
    [run] = system.wait_finished(post(system, "faults/timeout"), timeout=180)
    assert run["status"] == "failed"
    assert attempts(system, run["run_id"]) == [
        ("StageStarted", "hang", 1, None, None),
        ("StageFailed", "hang", 1, True, "TaskTimeout"),
        ("StageStarted", "hang", 2, None, None),
        ("StageFailed", "hang", 2, False, "TaskTimeout"),
    ]
    assert run["stages"][1]["status"] == "skipped"
    notes = [n for n in holders(system) if n[0] == run["run_id"]]
    assert [n[2] for n in notes] == ["1", "2"]
    pids = [int(pid) for note in notes for pid in note[4:]]
    assert len(pids) == 4
    wait_until(lambda: not any(running(pid) for pid in pids), 30, what="every process of the task to end")


def test_async_task_times_out_on_the_loop(system: System):
    """An async task past its timeout is cancelled and recorded as TaskTimeout."""
    [run] = system.wait_finished(post(system, "faults/async"), timeout=120)
    assert run["status"] == "failed"
    assert attempts(system, run["run_id"])[-1] == ("StageFailed", "async_hang", 1, False, "TaskTimeout")


def test_retry_after_backoff_records_each_attempt(system: System):
    """A task failing once is retried after a backoff; both attempts are in the run log; the run succeeds."""
    [run] = system.wait_finished(post(system, "faults/flaky"), timeout=120)
    assert run["status"] == "succeeded", run
    assert attempts(system, run["run_id"])[:3] == [
        ("StageStarted", "flaky", 1, None, None),
        ("StageFailed", "flaky", 1, True, "RuntimeError"),
        ("StageStarted", "flaky", 2, None, None),
    ]
    failed, retried = [
        r for r in run_log(system, run["run_id"]) if r.type in {"StageFailed", "StageStarted"}
    ][1:3]
    # next_step.backoff: before attempt 2, at least half of the 1 s base (full jitter above that).
    assert (retried.occurred_at - failed.occurred_at).total_seconds() >= 0.5
    assert run["stages"][0]["output"] == {"attempt": 2}


def test_non_retryable_error_is_not_retried(system: System):
    """NonRetryable fails the stage at attempt 1 although the task allows three retries."""
    [run] = system.wait_finished(post(system, "faults/refuses"), timeout=120)
    assert run["status"] == "failed"
    assert attempts(system, run["run_id"]) == [
        ("StageStarted", "refuses", 1, None, None),
        ("StageFailed", "refuses", 1, False, "NonRetryable"),
    ]
    assert [s for r, s, _ in system.marks_list() if r == run["run_id"]] == ["refuses"]
