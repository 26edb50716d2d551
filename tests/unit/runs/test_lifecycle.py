"""The run state machine: valid transitions fold, invalid ones raise."""

from __future__ import annotations

import pytest

from hamster.errors import InvalidTransition
from hamster.runs.events import (
    RunCancelled,
    RunFailed,
    RunSucceeded,
    StageStarted,
)
from hamster.runs.lifecycle import RUN_TRANSITIONS, evolve, fold
from tests.unit.runs.records import RUN, at, claimed, failed, renewed, requested, started, succeeded


def test_happy_path():
    """A run goes queued → running → succeeded, with each stage's output kept."""
    state = fold(
        [
            requested(),
            started(2, 0),
            succeeded(3, 0, output={"x": 1}),
            started(4, 1),
            succeeded(5, 1, output=2),
            RunSucceeded(event_id="e6", run_id=RUN, seq=6),
        ]
    )
    assert state is not None
    assert state.status == "succeeded"
    assert state.outputs() == {"a": {"x": 1}, "b": 2}
    assert [s.status for s in state.stages] == ["succeeded", "succeeded"]
    assert state.finished_at is not None


def test_failure_ends_the_run():
    """A failed stage then RunFailed: later stages stay pending."""
    state = fold(
        [
            requested(),
            started(2, 0),
            failed(3, 0),
            RunFailed(event_id="e4", run_id=RUN, seq=4, stage="a", reason="boom"),
        ]
    )
    assert state.status == "failed"
    assert [s.status for s in state.stages] == ["failed", "pending"]


def test_retry_and_crash_restart_are_new_attempts():
    """A retrying failure, or a stage cut off while running, restarts with a higher attempt."""
    state = fold(
        [
            requested(),
            started(2, 0),
            failed(3, 0, retrying=True),
            started(4, 0, attempt=2),
            started(5, 0, attempt=3),
            succeeded(6, 0, attempt=3),
        ]
    )
    assert state.stages[0].status == "succeeded"
    assert state.stages[0].attempt == 3


@pytest.mark.parametrize(
    "events",
    [
        [started(1, 0)],  # no run yet
        [requested(), requested()],  # requested twice
        [requested(), started(2, 1)],  # stage out of order
        [requested(), started(2, 0), started(3, 0, attempt=1)],  # attempt not increasing
        [requested(), started(2, 0), succeeded(3, 0, attempt=2)],  # wrong attempt
        [requested(), started(3, 0)],  # sequence gap
        [requested(), started(2, 0), RunSucceeded(event_id="x", run_id=RUN, seq=3)],  # unfinished
        [
            requested(),
            RunCancelled(event_id="x", run_id=RUN, seq=2, reason="r"),
            started(3, 0),
        ],  # after the end
        [requested(), started(2, 0, stage="zzz")],  # no such stage
    ],
)
def test_invalid_transitions_raise(events):
    """Records that do not fit the run raise InvalidTransition."""
    with pytest.raises(InvalidTransition):
        fold(events)


def test_transition_table_covers_every_final_state():
    """Every final state is reachable, and nothing leaves a final state."""
    targets = set(RUN_TRANSITIONS.values())
    assert {"succeeded", "failed", "cancelled"} <= targets
    assert not [k for k in RUN_TRANSITIONS if k[0] in {"succeeded", "failed", "cancelled"}]


def test_record_of_another_run_is_refused():
    """A record keyed to another run id does not fold into this run."""
    state = evolve(None, requested())
    other = StageStarted(event_id="x", run_id="other", seq=2, stage="a", index=0, attempt=1)
    with pytest.raises(InvalidTransition):
        evolve(state, other)


def test_a_replay_from_a_later_stage_starts_there():
    """RunRequested with start_index marks earlier stages succeeded and reused, holding their outputs."""
    replay = requested().model_copy(update={"start_index": 1, "reused_outputs": {"a": {"x": 1}}})
    state = fold([replay, started(2, 1), succeeded(3, 1), RunSucceeded(event_id="e4", run_id=RUN, seq=4)])
    assert state.status == "succeeded"
    assert [(s.status, s.reused, s.attempt) for s in state.stages] == [
        ("succeeded", True, 0),
        ("succeeded", False, 1),
    ]
    assert state.outputs() == {"a": {"x": 1}, "b": None}
    with pytest.raises(InvalidTransition):
        fold([replay, started(2, 0)])  # the reused stage does not run again


@pytest.mark.parametrize(
    "update",
    [
        {"start_index": 1},  # no output for the reused stage
        {"start_index": 0, "reused_outputs": {"a": 1}},  # an output for a stage that runs
        {"start_index": 2, "reused_outputs": {"a": 1, "b": 2}},  # nothing left to run
    ],
)
def test_a_replay_start_must_fit_the_pipeline(update):
    """A start index without exactly the earlier stages' outputs is refused."""
    with pytest.raises(InvalidTransition):
        evolve(None, requested().model_copy(update=update))


def test_the_state_carries_the_latest_hash():
    """The run state remembers the last record's hash: the next record's prev_hash."""
    state = fold(
        [requested().model_copy(update={"hash": "h1"}), started(2, 0).model_copy(update={"hash": "h2"})]
    )
    assert state.last_hash == "h2"


def test_a_claim_holds_the_stage_for_its_lease():
    """StageStarted with a lease makes the attempt its worker's until the lease runs out."""
    state = fold([requested(), claimed(2, 0, 1, 0)])
    stage = state.stages[0]
    assert (stage.status, stage.worker, stage.lease_until) == ("running", "w1", at(30))


def test_a_second_claim_of_the_same_stage_is_refused():
    """Two workers claiming the same attempt: the first record in the log wins, the second is refused."""
    state = fold([requested(), claimed(2, 0, 1, 0, worker="w1")])
    with pytest.raises(InvalidTransition):
        evolve(state, claimed(2, 0, 1, 0.01, worker="w2"))


def test_a_takeover_is_refused_while_the_lease_lasts_and_accepted_after():
    """Another attempt may start only once the running attempt's lease ran out; renewals extend it."""
    state = fold([requested(), claimed(2, 0, 1, 0)])
    with pytest.raises(InvalidTransition, match="w1's until"):
        evolve(state, claimed(3, 0, 2, 29, worker="w2"))
    taken = evolve(state, claimed(3, 0, 2, 30, worker="w2"))
    assert (taken.stages[0].attempt, taken.stages[0].worker) == (2, "w2")
    renewed_state = evolve(state, renewed(2, 0, 1, until_s=60, occurred_s=20))
    assert renewed_state.seq == 2  # a renewal is not a step of the run
    with pytest.raises(InvalidTransition):
        evolve(renewed_state, claimed(3, 0, 2, 45, worker="w2"))


def test_records_of_an_attempt_no_longer_current_are_refused():
    """Once attempt 2 took over, attempt 1's renewals and outcome are refused: it cannot record anything."""
    state = fold([requested(), claimed(2, 0, 1, 0, worker="w1"), claimed(3, 0, 2, 31, worker="w2")])
    with pytest.raises(InvalidTransition):
        evolve(state, succeeded(4, 0, attempt=1))
    with pytest.raises(InvalidTransition):
        evolve(state, renewed(3, 0, 1, until_s=90, worker="w1"))
    assert evolve(state, succeeded(4, 0, attempt=2)).stages[0].status == "succeeded"


def test_only_the_holder_renews_and_a_renewal_must_name_the_current_seq():
    """A renewal by another worker, or one made from a stale seq, is refused."""
    state = fold([requested(), claimed(2, 0, 1, 0, worker="w1")])
    with pytest.raises(InvalidTransition):
        evolve(state, renewed(2, 0, 1, until_s=60, worker="w2"))
    with pytest.raises(InvalidTransition):
        evolve(state, renewed(1, 0, 1, until_s=60))


def test_a_released_lease_makes_the_stage_claimable_at_once():
    """A stopping worker releases its lease: another attempt may start right after."""
    release = renewed(2, 0, 1, until_s=99, occurred_s=5, released=True)
    state = fold([requested(), claimed(2, 0, 1, 0), release])
    assert state.stages[0].lease_until == at(5)
    assert evolve(state, claimed(3, 0, 2, 5, worker="w2")).stages[0].attempt == 2


def test_a_retry_may_not_start_before_its_time():
    """A retrying failure names when the next attempt may start; the state machine holds to it."""
    state = fold([requested(), claimed(2, 0, 1, 0), failed(3, 0, 1, retrying=True, retry_at=at(10))])
    with pytest.raises(InvalidTransition, match="may not start before"):
        evolve(state, claimed(4, 0, 2, 9))
    assert evolve(state, claimed(4, 0, 2, 10)).stages[0].status == "running"
