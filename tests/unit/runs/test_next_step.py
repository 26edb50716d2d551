"""What a worker may claim, what follows a stage, and what the reaper does: pure decisions."""

from __future__ import annotations

import random

from hamster.runs.lifecycle import fold
from hamster.runs.next_step import (
    FinishFailed,
    FinishSucceeded,
    GiveUp,
    Reoffer,
    Skip,
    Start,
    backoff,
    claimable,
    overdue,
    settle,
    wakes_at,
)
from tests.unit.runs.records import at, claimed, failed, renewed, requested, skip, succeeded


def test_a_pending_stage_is_claimable_as_attempt_one():
    """A new run's first stage may be claimed at once, as attempt 1."""
    assert claimable(fold([requested()]), at(0)) == [Start(0, 1)]


def test_a_held_stage_is_not_claimable_until_its_lease_runs_out():
    """While its lease lasts nobody else may start the stage; after it, a takeover as attempt + 1."""
    state = fold([requested(), claimed(2, 0, 1, 0)])
    assert claimable(state, at(29)) == []
    assert wakes_at(state) == at(30)
    assert claimable(state, at(30)) == [Start(0, 2, takeover=True)]
    state = fold([requested(), claimed(2, 0, 1, 0), renewed(2, 0, 1, until_s=50, occurred_s=20)])
    assert claimable(state, at(40)) == []


def test_the_next_stage_is_claimable_once_the_one_before_succeeded():
    """No hand-off message: the log alone makes the next stage claimable."""
    state = fold([requested(), claimed(2, 0, 1, 0), succeeded(3, 0)])
    assert claimable(state, at(1)) == [Start(1, 1)]
    assert settle(state, at(1)) is None


def test_a_retry_is_claimable_when_it_is_due():
    """A retrying failure is claimable from its retry time on; a final failure never."""
    state = fold([requested(), claimed(2, 0, 1, 0), failed(3, 0, 1, retrying=True, retry_at=at(10))])
    assert claimable(state, at(9)) == []
    assert wakes_at(state) == at(10)
    assert claimable(state, at(10)) == [Start(0, 2)]
    final = fold([requested(), claimed(2, 0, 1, 0), failed(3, 0, 1)])
    assert claimable(final, at(100)) == []
    assert settle(final, at(100)) == Skip((1,), "a", "stage a failed")
    skipped = fold([requested(), claimed(2, 0, 1, 0), failed(3, 0, 1), skip(4, (1,))])
    assert skipped.stages[1].status == "skipped"
    assert isinstance(settle(skipped, at(100)), FinishFailed)


def test_the_run_ends_after_its_last_stage():
    """After the last stage succeeded the run succeeds; nothing is claimable in a run that ended."""
    state = fold([requested(), claimed(2, 0, 1, 0), succeeded(3, 0), claimed(4, 1, 1, 1), succeeded(5, 1)])
    assert settle(state, at(2)) == FinishSucceeded()
    assert claimable(state, at(2)) == []


def test_backoff_grows_and_is_capped():
    """Backoff doubles per attempt with full jitter, up to the cap."""
    rng = random.Random(1)
    assert 0.5 <= backoff(2, rng=rng) <= 1.0
    assert 2.0 <= backoff(4, rng=rng) <= 4.0
    assert backoff(30, cap_s=60.0, rng=rng) <= 60.0


def _overdue(state, now_s, touched_s=0, admitted=True, governed=False):
    return overdue(
        state,
        at(now_s),
        touched_at=at(touched_s),
        admitted=admitted,
        governed=governed,
        reoffer_after_s=30,
        stuck_after_s=600,
    )


def test_the_reaper_offers_a_run_whose_request_was_lost_again():
    """A queued run no worker has a request for is offered again after a while, unless its lane holds it."""
    state = fold([requested()])
    assert _overdue(state, 10, admitted=False) is None
    assert isinstance(_overdue(state, 31, admitted=False), Reoffer)
    assert _overdue(state, 3600, admitted=False, governed=True) is None


def test_the_reaper_fails_a_run_nothing_moved_on_but_never_one_that_is_held():
    """No progress and no live lease for too long fails the run; a stage renewing its lease is left alone."""
    state = fold([requested(), claimed(2, 0, 1, 0), failed(3, 0, 1, retrying=True, retry_at=at(10))])
    assert _overdue(state, 500) is None
    assert isinstance(_overdue(state, 601), GiveUp)
    held = fold([requested(), claimed(2, 0, 1, 0, lease_s=10_000)])
    assert _overdue(held, 5000) is None
