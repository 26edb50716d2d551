"""What a stage agent does with a stage request, and what follows a stage: pure decisions.

The agents carry these out; they decide nothing themselves. Redeliveries are expected (at-least-once
delivery), so every decision is made against the run's current state: a stage that already succeeded is
never run again, and a stage found ``running`` was interrupted by a dead worker and runs as a new attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hamster.lifecycle import RunState
from hamster.run_events import RunStage


@dataclass(frozen=True)
class Start:
    """Run the stage as this attempt."""

    attempt: int


@dataclass(frozen=True)
class Continue:
    """The stage is done but what follows it may not have happened: decide again from the state."""


@dataclass(frozen=True)
class Skip:
    """Nothing to do (a duplicate or stale request)."""

    reason: str


@dataclass(frozen=True)
class HandOff:
    """Send the run to stage ``index``."""

    index: int


@dataclass(frozen=True)
class Retry:
    index: int
    attempt: int
    delay_s: float


@dataclass(frozen=True)
class FinishSucceeded:
    pass


@dataclass(frozen=True)
class FinishFailed:
    stage: str
    reason: str


Plan = Start | Continue | Skip
Next = HandOff | Retry | FinishSucceeded | FinishFailed | Skip


def plan(state: RunState, request: RunStage) -> Plan:
    """What to do with a request to run stage ``request.index`` of a run now in ``state``."""
    if state.finished:
        return Skip(f"run already {state.status}")
    if request.index >= len(state.stages):
        return Skip(f"no stage {request.index}")
    stage = state.stages[request.index]
    upcoming = state.next_index()
    if stage.status == "succeeded":
        return Continue()
    if upcoming != request.index:
        return Skip(f"stage {stage.name} is not next (stage {upcoming} is)")
    if stage.status == "pending":
        return Start(attempt=max(1, request.attempt))
    if stage.status == "running":
        # This agent handles one request at a time, so a stage still marked running was cut off by a
        # worker that died: it runs again, as a new attempt.
        return Start(attempt=stage.attempt + 1)
    # failed
    error = stage.error or {}
    if error.get("retrying") and request.attempt > stage.attempt:
        return Start(attempt=request.attempt)
    if error.get("retrying"):
        return Skip(f"stale request for attempt {request.attempt} of {stage.name}")
    return Continue()


def backoff(
    attempt: int, base_s: float = 1.0, cap_s: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter before retry ``attempt`` (2, 3, …)."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 2))
    return (rng or random).uniform(ceiling / 2, ceiling)


def after_stage(state: RunState, index: int) -> Next:
    """What follows stage ``index`` of the run, now in ``state``."""
    if state.finished:
        return Skip(f"run already {state.status}")
    stage = state.stages[index]
    if stage.status == "succeeded":
        following = index + 1
        if following == len(state.stages):
            return FinishSucceeded()
        if state.stages[following].status != "pending":
            return Skip(f"stage {state.stages[following].name} already under way")
        return HandOff(following)
    if stage.status == "failed":
        error = stage.error or {}
        if error.get("retrying"):
            return Retry(index, stage.attempt + 1, backoff(stage.attempt + 1))
        return FinishFailed(
            stage.name, f"stage {stage.name} failed: {error.get('type')}: {error.get('message')}"
        )
    return Skip(f"stage {stage.name} is {stage.status}")
