"""What a worker may do with a run, decided from the run's state alone: pure decisions, no I/O.

``agents.stages`` carries them out. Every worker holds the states of the runs in flight (folded from the run
log, ``agents.plumbing.run_view``), so every worker asks the same questions of the same states:

- ``claimable``: which stages of this run may be claimed now, and as which attempts? A stage whose needs
  all succeeded (``hamster.pipelines.graph``) is claimable when it is pending, when it failed and its retry is
  due, or when the attempt running it lost its lease (its worker died or stopped renewing). Several stages of
  a graph may be claimable at once; an approval stage never is (a person ends it). The claim itself is a
  ``StageStarted`` record; the state machine decides which of several workers' claims won.
- ``settle``: what the run owes once a stage is done: skip what a failure leaves unable to run (its
  dependents; with ``fail_fast`` its matrix siblings), deny an approval nobody decided in time, or end
  the run once every stage is done (succeeded if all succeeded). Nothing starts a stage: it becomes
  claimable in the log, and any worker with a free slot claims it.
- ``overdue``: the reaper's question, for runs that nothing moves on: hand a run whose request was lost to
  the workers again, or fail one that has made no progress for too long, so no lane waits for ever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from hamster.runs.lifecycle import RunState


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
class Skip:
    """Record these stages ``skipped``: ``because`` failed."""

    indexes: tuple[int, ...]
    because: str
    reason: str


@dataclass(frozen=True)
class Deny:
    """The approval stage ``index`` waited past its timeout."""

    index: int
    reason: str


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
Settle = Skip | Deny | Finish
Overdue = Reoffer | GiveUp


def _start(state: RunState, index: int, now: datetime) -> Start | None:
    stage = state.stages[index]
    if stage.approval or not state.ready(index):
        return None
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


def claimable(state: RunState, now: datetime) -> list[Start]:
    """The attempts workers may claim now for the run's stages, in pipeline order."""
    if state.finished:
        return []
    return [start for i in range(len(state.stages)) if (start := _start(state, i, now)) is not None]


def wakes_at(state: RunState) -> datetime | None:
    """When a stage becomes claimable (or an approval due) without a new record: a lease, a retry or an
    approval's timeout running out."""
    if state.finished:
        return None
    times = []
    for stage in state.stages:
        if stage.status == "running" and stage.lease_until is not None:
            times.append(stage.lease_until)
        elif stage.status == "failed" and stage.retry_at is not None:
            times.append(stage.retry_at)
        elif stage.status == "pending" and stage.due_at is not None:
            times.append(stage.due_at)
    return min(times, default=None)


def backoff(
    attempt: int, base_s: float = 1.0, cap_s: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter before retry ``attempt`` (2, 3, …)."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 2))
    return (rng or random).uniform(ceiling / 2, ceiling)


def settle(state: RunState, now: datetime) -> Settle | None:
    """The record the run owes now, if any: stages a failure skips, an approval past its timeout, or
    its end once every stage is done. Called again after each such record until it says None."""
    if state.finished:
        return None
    for stage in state.stages:
        if stage.status != "failed" or not stage.done:
            continue
        doomed = state.dependents(stage.name)
        if stage.matrix is not None and stage.fail_fast:
            doomed += [i for i, s in enumerate(state.stages) if s.matrix == stage.matrix]
        left = tuple(sorted({i for i in doomed if not state.stages[i].done}))
        if left:
            siblings = stage.matrix is not None and stage.fail_fast
            why = (
                "fail_fast: "
                if siblings and any(state.stages[i].matrix == stage.matrix for i in left)
                else ""
            )
            return Skip(left, stage.name, f"{why}stage {stage.name} failed")
    for index, stage in enumerate(state.stages):
        if stage.status == "pending" and stage.due_at is not None and now >= stage.due_at:
            return Deny(index, f"nobody approved {stage.name} within {stage.timeout_s:g} s")
    if not all(stage.done for stage in state.stages):
        return None
    failed = next((s for s in state.stages if s.status == "failed"), None)
    if failed is None:
        return FinishSucceeded()
    error = failed.error or {}
    return FinishFailed(
        failed.name, f"stage {failed.name} failed: {error.get('type')}: {error.get('message')}"
    )


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
    if any(s.status == "running" and (s.lease_until is None or now < s.lease_until) for s in state.stages):
        return None  # someone holds a stage (a lease that ran out makes it claimable, not overdue)
    if any(s.approval and s.status == "pending" and state.ready(i) for i, s in enumerate(state.stages)):
        return None  # a person's turn: its timeout, if it has one, ends it (``settle``)
    stage = next((s for s in state.stages if not s.done), None)
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
