"""Concurrency control per subscriber: which runs start, which wait and which are cancelled. Pure.

Runs of one subscriber are grouped in *lanes*: one pull request, or one branch, of one repository
(``lane_of``). A subscriber's ``concurrency`` option says what a new run does to its lane:

    parallel            runs side by side (the default)
    cancel-superseded   a new run cancels the runs still in flight in its lane (a new push supersedes them)
    serial              one run at a time per lane; the others wait, in the order they were requested

``max_parallel`` caps the runs of one subscriber running at once in one repository, whatever the lane;
a run over the cap waits. ``admit`` decides for a new run; ``release`` decides, when a run finishes,
which waiting runs start now. The agents keep the in-flight runs and carry these decisions out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hamster.github_events import EventInfo

Concurrency = Literal["parallel", "cancel-superseded", "serial"]
CONCURRENCY_MODES: tuple[Concurrency, ...] = ("parallel", "cancel-superseded", "serial")


@dataclass(frozen=True)
class Policy:
    concurrency: Concurrency = "parallel"
    max_parallel: int | None = None


@dataclass(frozen=True)
class InFlight:
    """A run of one subscriber in one repository that has not finished; ``running`` once it started."""

    run_id: str
    lane: str
    running: bool


@dataclass(frozen=True)
class Admission:
    """For a new run: start it now or let it wait; and the runs it supersedes, to cancel."""

    start: bool
    cancel: tuple[str, ...] = ()


def superseded_reason(new_run_id: str) -> str:
    """The reason a cancelled run records: it names the run that superseded it."""
    return f"superseded by run {new_run_id}"


def lane_of(info: EventInfo) -> str:
    """The lane an event's runs belong to: its pull request, else its branch, else its ref."""
    if info.pr_number is not None:
        return f"pr:{info.pr_number}"
    if info.branch is not None:
        return f"branch:{info.branch}"
    return f"ref:{info.ref or '-'}"


def _room(policy: Policy, running: int) -> bool:
    return policy.max_parallel is None or running < policy.max_parallel


def admit(policy: Policy, in_flight: Sequence[InFlight], lane: str) -> Admission:
    """What a new run in ``lane`` does, given its subscriber's runs in flight in the same repository."""
    same_lane = [r for r in in_flight if r.lane == lane]
    if policy.concurrency == "cancel-superseded":
        cancel = tuple(r.run_id for r in same_lane)
        running = sum(r.running for r in in_flight if r.run_id not in cancel)
        return Admission(start=_room(policy, running), cancel=cancel)
    running = sum(r.running for r in in_flight)
    serial = policy.concurrency == "serial"
    if serial and same_lane:
        return Admission(start=False)
    # Runs already waiting for room (not for their lane) go first: a newcomer may not overtake them.
    busy_lanes = {r.lane for r in in_flight if r.running}
    if any(not r.running and not (serial and r.lane in busy_lanes) for r in in_flight):
        return Admission(start=False)
    return Admission(start=_room(policy, running))


def release(policy: Policy, in_flight: Sequence[InFlight]) -> list[str]:
    """The waiting runs that may start now, in request order (``in_flight`` is in request order)."""
    running = sum(r.running for r in in_flight)
    busy_lanes = {r.lane for r in in_flight if r.running}
    starting: list[str] = []
    for run in in_flight:
        if run.running:
            continue
        if not _room(policy, running):
            break
        if policy.concurrency == "serial" and run.lane in busy_lanes:
            continue
        starting.append(run.run_id)
        busy_lanes.add(run.lane)
        running += 1
    return starting
