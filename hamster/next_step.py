"""What a worker may do with a run, decided from the run's state alone: pure decisions, no I/O.

``agents.stages`` carries them out. Every worker holds the states of the runs in flight (folded from the run
log, ``streams.run_view``), so every worker asks the same questions of the same states:

- ``claimable``: may a stage of this run be claimed now, and as which attempt? The next stage is claimable
  when it is pending, when it failed and its retry is due, or when the attempt running it lost its lease
  (its worker died or stopped renewing). The claim itself is a ``StageStarted`` record; the state machine
  decides which of several workers' claims won.
- ``after_stage``: once a stage's outcome is recorded, does the run end? Nothing else follows a stage: the
  next one becomes claimable in the log, and any worker with a free slot claims it.
- ``overdue``: the reaper's question, for runs that nothing moves on: hand a run whose request was lost to
  the workers again, or fail one that has made no progress for too long, so no lane waits for ever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from hamster.lifecycle import RunState


@dataclass(frozen=True)
class Start:
    """Claim stage ``index`` as ``attempt``; ``takeover``: the attempt before it lost its lease."""

    index: int
    attempt: int
    takeover: bool = False


@dataclass(frozen=True)
class FinishSucceeded:
    pass


@dataclass(frozen=True)
class FinishFailed:
    stage: str
    reason: str


@dataclass(frozen=True)
class Reoffer:
    """The run is admitted but no worker has its request: send it to the workers again."""

    reason: str


@dataclass(frozen=True)
class GiveUp:
    """Nothing has moved the run on for too long: fail it with ``reason``."""

    reason: str


Finish = FinishSucceeded | FinishFailed
Overdue = Reoffer | GiveUp


def claimable(state: RunState, now: datetime) -> Start | None:
    """The attempt a worker may claim now for the run's next stage, or None."""
    if state.finished:
        return None
    index = state.next_index()
    if index is None:
        return None
    stage = state.stages[index]
    if stage.status == "pending":
        return Start(index, stage.attempt + 1)
    if stage.status == "running":
        if stage.lease_until is not None and now >= stage.lease_until:
            return Start(index, stage.attempt + 1, takeover=True)
        return None
    retrying = stage.status == "failed" and (stage.error or {}).get("retrying")
    if retrying and (stage.retry_at is None or now >= stage.retry_at):
        return Start(index, stage.attempt + 1)
    return None


def wakes_at(state: RunState) -> datetime | None:
    """When the run's next stage becomes claimable without a new record: a lease or a retry running out."""
    index = state.next_index()
    if state.finished or index is None:
        return None
    stage = state.stages[index]
    if stage.status == "running":
        return stage.lease_until
    if stage.status == "failed":
        return stage.retry_at
    return None


def backoff(
    attempt: int, base_s: float = 1.0, cap_s: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter before retry ``attempt`` (2, 3, …)."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 2))
    return (rng or random).uniform(ceiling / 2, ceiling)


def after_stage(state: RunState, index: int) -> Finish | None:
    """Whether the run ends now that stage ``index``'s outcome is recorded; None: it goes on."""
    if state.finished:
        return None
    stage = state.stages[index]
    if stage.status == "succeeded" and state.next_index() is None:
        return FinishSucceeded()
    if stage.status == "failed" and not (stage.error or {}).get("retrying"):
        error = stage.error or {}
        return FinishFailed(
            stage.name, f"stage {stage.name} failed: {error.get('type')}: {error.get('message')}"
        )
    return None


def overdue(
    state: RunState,
    now: datetime,
    *,
    touched_at: datetime,
    admitted: bool,
    governed: bool,
    reoffer_after_s: float,
    stuck_after_s: float,
) -> Overdue | None:
    """What the reaper does with a run in flight, or None.

    ``touched_at``: the time of its latest record (lease renewals included); ``admitted``: a stage request
    for it is known; ``governed``: its subscriber limits concurrency, so it may wait for its lane, as long
    as it takes, before it is admitted.
    """
    if state.finished:
        return None
    index = state.next_index()
    stage = state.stages[index] if index is not None else None
    held = stage is not None and stage.status == "running"
    if held and (stage.lease_until is None or now < stage.lease_until):  # type: ignore[union-attr]
        return None  # someone holds it (a lease that ran out makes it claimable, not overdue)
    idle_s = (now - touched_at).total_seconds()
    if not admitted:
        if governed:
            return None
        if state.status == "queued" and idle_s >= reoffer_after_s:
            return Reoffer(f"no stage request for it after {idle_s:.0f} s")
        return None
    if idle_s >= stuck_after_s:
        where = f" at stage {stage.name}" if stage is not None else ""
        return GiveUp(f"no progress{where} for {idle_s:.0f} s (no worker took it on)")
    return None


def retry_time(now: datetime, attempt: int) -> datetime:
    """When retry ``attempt`` may start."""
    return now + timedelta(seconds=backoff(attempt))
