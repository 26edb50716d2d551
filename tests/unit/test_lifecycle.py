"""The run state machine: valid transitions fold, invalid ones raise."""

from __future__ import annotations

import pytest

from hamster import ids
from hamster.errors import InvalidTransition
from hamster.github_events import EventInfo
from hamster.lifecycle import RUN_TRANSITIONS, catch_up, evolve, fold
from hamster.run_events import (
    RunCancelled,
    RunFailed,
    RunRequested,
    RunSucceeded,
    StageFailed,
    StageStarted,
    StageSucceeded,
)

RUN = ids.run_id("delivery", "sub")


def requested(pipeline=("a", "b")):
    return RunRequested(
        event_id="e1",
        run_id=RUN,
        seq=1,
        subscriber="sub",
        subscriber_version="v1",
        pipeline=pipeline,
        event=EventInfo(name="push", delivery_id="delivery"),
    )


def started(seq, index, attempt=1, stage=None):
    return StageStarted(
        event_id=f"e{seq}", run_id=RUN, seq=seq, stage=stage or "ab"[index], index=index, attempt=attempt
    )


def succeeded(seq, index, attempt=1, output=None):
    return StageSucceeded(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stage="ab"[index],
        index=index,
        attempt=attempt,
        output=output,
        duration_ms=1.0,
    )


def failed(seq, index, attempt=1, retrying=False):
    return StageFailed(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stage="ab"[index],
        index=index,
        attempt=attempt,
        error_type="E",
        message="m",
        duration_ms=1.0,
        retrying=retrying,
    )


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


def test_catch_up_folds_what_the_log_has_beyond_the_state():
    """The table one record behind the log (a worker died between the two writes): the stage that
    succeeded in the log is succeeded in the caught-up state, which knows where its record is."""
    log = [requested(), started(2, 0), succeeded(3, 0), started(4, 1), succeeded(5, 1)]
    table = {RUN: fold(log[:4])}
    caught = catch_up(table, enumerate(log, start=100))
    assert caught[RUN].stages[1].status == "succeeded"
    assert (caught[RUN].seq, caught[RUN].log_offset) == (5, 104)


def test_catch_up_skips_what_the_state_already_has_and_stops_at_a_gap():
    """Records the state reflects change nothing; a record that does not follow ends that run's catch-up;
    a run with only its RunRequested in the log is left to its first stage request."""
    log = [requested(), started(2, 0), succeeded(3, 0)]
    assert catch_up({RUN: fold(log)}, enumerate(log)) == {}
    gap = [requested(), started(2, 0), started(4, 1)]
    assert catch_up({}, enumerate(gap))[RUN].seq == 2
    assert catch_up({}, enumerate([requested()])) == {}
    # No state at all (the table never got the run): the log alone rebuilds it.
    assert catch_up({}, enumerate(log))[RUN].stages[0].status == "succeeded"
