"""What the run log says ran (bench.executions): accepted claims, executions, peaks, stages run twice,
lease ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.executions import (
    accepted,
    executions,
    ideal_makespan_s,
    lease_end,
    most_at_once,
    ran_twice,
    slots_available,
    worker_pid,
)
from hamster import ids
from hamster.intake.github_events import EventInfo
from hamster.runs.events import LeaseRenewed, RunRequested, RunSucceeded, StageStarted, StageSucceeded

RUN = ids.run_id("delivery", "bench-slow")
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
W1, W2 = "host:101", "host:202"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def requested() -> RunRequested:
    return RunRequested(
        event_id="e1",
        run_id=RUN,
        seq=1,
        subscriber="bench-slow",
        subscriber_version="v1",
        pipeline=("slow",),
        event=EventInfo(name="pull_request", delivery_id="delivery"),
        occurred_at=at(0),
    )


def started(seq: int, attempt: int, when: float, worker: str = W1, lease_s: float = 10.0) -> StageStarted:
    return StageStarted(
        event_id=f"e{seq}-{worker}",
        run_id=RUN,
        seq=seq,
        stage="slow",
        index=0,
        attempt=attempt,
        lease_s=lease_s,
        occurred_at=at(when),
        worker=worker,
    )


def succeeded(seq: int, attempt: int, when: float, worker: str = W1) -> StageSucceeded:
    return StageSucceeded(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stage="slow",
        index=0,
        attempt=attempt,
        duration_ms=1.0,
        occurred_at=at(when),
        worker=worker,
    )


def renewed(seq: int, attempt: int, when: float, until: float, worker: str = W1) -> LeaseRenewed:
    return LeaseRenewed(
        event_id=f"r{when}",
        run_id=RUN,
        seq=seq,
        stage="slow",
        index=0,
        attempt=attempt,
        until=at(until),
        occurred_at=at(when),
        worker=worker,
    )


def test_a_claim_that_lost_is_not_an_execution():
    """Two workers claim the same attempt: the first claim in the log counts, the second changes nothing."""
    log = [requested(), started(2, 1, 1.0, W1), started(2, 1, 1.1, W2), succeeded(3, 1, 9.0)]
    assert [r.worker for r in accepted(log) if isinstance(r, StageStarted)] == [W1]
    [only] = executions(log)
    assert (only.attempt, only.worker, only.start, only.end) == (1, W1, at(1).timestamp(), at(9).timestamp())
    assert ran_twice(executions(log)) == 0


def test_a_takeover_is_a_second_execution_of_the_stage():
    """Attempt 2 after the lease ran out counts as the stage executed twice; attempt 1 recorded no end."""
    log = [
        requested(),
        started(2, 1, 1.0, W1),
        started(3, 2, 5.0, W2),  # refused: attempt 1's lease lasts until 11 s
        started(3, 2, 12.0, W2),
        succeeded(4, 2, 12.5, W2),
        RunSucceeded(event_id="e5", run_id=RUN, seq=5, occurred_at=at(13)),
    ]
    found = executions(log)
    assert [(e.attempt, e.worker, e.end is None) for e in found] == [(1, W1, True), (2, W2, False)]
    assert ran_twice(found) == 1


def test_a_renewal_moves_the_lease_end_and_a_release_ends_it():
    """The lease ends at the claim plus lease_s, or where the latest accepted renewal put it."""
    log = [requested(), started(2, 1, 1.0, W1, lease_s=10.0)]
    assert lease_end(log, 0, 1) == at(11).timestamp()
    log.append(renewed(2, 1, 4.0, until=14.0))
    assert lease_end(log, 0, 1) == at(14).timestamp()
    log.append(renewed(2, 1, 5.0, until=30.0, worker=W2))  # not the holder's: refused
    assert lease_end(log, 0, 1) == at(14).timestamp()
    assert lease_end(log, 0, 2) is None


def test_most_at_once_counts_overlapping_spans_only():
    """Spans that touch end to end share a slot; overlapping ones do not."""
    assert most_at_once([]) == 0
    assert most_at_once([(0, 8), (0, 8), (8, 16), (8, 16)]) == 2
    assert most_at_once([(0, 8), (1, 9), (2, 10), (7.9, 12)]) == 4


def test_makespan_ideal_and_slots_available():
    """The ideal is full rounds of stages; slots count only for workers ready before the last claim."""
    assert ideal_makespan_s(8, 4, 8.0) == 16.0
    assert ideal_makespan_s(8, 6, 8.0) == 16.0
    assert ideal_makespan_s(9, 4, 8.0) == 24.0
    assert slots_available(2, [1.0, 1.5, 20.0], last_claim=9.0) == 4
    assert slots_available(2, [1.0, 1.5, 5.0], last_claim=9.0) == 6
    assert slots_available(2, [1.0, None], last_claim=9.0) == 2


def test_worker_pid_is_read_from_the_worker_field():
    """A record's worker field is host:pid."""
    assert worker_pid("build-7.example:4242") == 4242
