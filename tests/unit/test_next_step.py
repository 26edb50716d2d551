"""What a stage agent does with a request, and what follows a stage."""

from __future__ import annotations

import random

from hamster.lifecycle import fold
from hamster.next_step import (
    Continue,
    FinishFailed,
    FinishSucceeded,
    HandOff,
    Retry,
    Skip,
    Start,
    after_stage,
    backoff,
    plan,
)
from hamster.run_events import RunStage
from tests.unit.test_lifecycle import failed, requested, started, succeeded


def request(index, attempt=1):
    req = requested()
    return RunStage(run_id=req.run_id, index=index, attempt=attempt, requested=req, event=req.event)


def test_fresh_request_starts_attempt_one():
    """A pending stage starts as attempt 1."""
    assert plan(fold([requested()]), request(0)) == Start(1)


def test_duplicate_after_success_continues_without_rerunning():
    """A stage that already succeeded is never run again; what follows is decided again."""
    state = fold([requested(), started(2, 0), succeeded(3, 0)])
    assert plan(state, request(0)) == Continue()
    assert after_stage(state, 0) == HandOff(1)
    state = fold([requested(), started(2, 0), succeeded(3, 0), started(4, 1)])
    assert isinstance(after_stage(state, 0), Skip)


def test_stage_found_running_restarts_as_new_attempt():
    """A stage still marked running was cut off by a dead worker: it runs again as attempt + 1."""
    state = fold([requested(), started(2, 0)])
    assert plan(state, request(0)) == Start(2)


def test_retry_requests():
    """A retrying failure is retried by the request for the next attempt; stale requests are skipped."""
    state = fold([requested(), started(2, 0), failed(3, 0, retrying=True)])
    decision = after_stage(state, 0)
    assert isinstance(decision, Retry) and decision.attempt == 2 and decision.delay_s > 0
    assert plan(state, request(0, attempt=2)) == Start(2)
    assert isinstance(plan(state, request(0, attempt=1)), Skip)


def test_final_failure_and_success():
    """A failure without retry fails the run; the last stage's success finishes it."""
    state = fold([requested(), started(2, 0), failed(3, 0)])
    assert isinstance(after_stage(state, 0), FinishFailed)
    assert plan(state, request(0)) == Continue()
    state = fold([requested(), started(2, 0), succeeded(3, 0), started(4, 1), succeeded(5, 1)])
    assert after_stage(state, 1) == FinishSucceeded()


def test_out_of_order_and_finished_runs_are_skipped():
    """A request for a stage that is not next, or for a finished run, does nothing."""
    assert isinstance(plan(fold([requested()]), request(1)), Skip)


def test_backoff_grows_and_is_capped():
    """Backoff doubles per attempt, with jitter, up to the cap."""
    rng = random.Random(1)
    assert 0.5 <= backoff(2, rng=rng) <= 1.0
    assert 2.0 <= backoff(4, rng=rng) <= 4.0
    assert backoff(30, cap_s=60, rng=rng) <= 60
