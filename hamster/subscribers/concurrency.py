"""Concurrency control per subscriber: which runs start, which wait and which are cancelled. Pure.

Runs of one subscriber are grouped in *lanes*: one pull request, or one branch, of one repository
(``lane_of``). A subscriber's ``concurrency`` option says what a new run does to its lane:

    parallel            runs side by side (the default)
    cancel-superseded   a new run cancels the runs still in flight in its lane (a new push supersedes them)
    serial              one run at a time per lane; the others wait, in the order they were requested

``max_parallel`` caps the runs of one subscriber running at once in one repository, whatever the lane;
a run over the cap waits. A ``LaneBook`` is one subscriber's runs in flight in one repository:
``on_requested`` files a new run (cancelling what it supersedes), ``on_finished`` takes a run out, and
both say which waiting runs start now (``release``: in request order, a newcomer never overtaking).
The lanes agent keeps the books in a table and carries these decisions out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hamster.intake.github_events import EventInfo

Concurrency = Literal["parallel", "cancel-superseded", "serial"]
CONCURRENCY_MODES: tuple[Concurrency, ...] = ("parallel", "cancel-superseded", "serial")


@dataclass(frozen=True)
class Policy:
    concurrency: Concurrency = "parallel"
    max_parallel: int | None = None

    @property
    def governed(self) -> bool:
        """Whether runs under this policy go through the lanes agent (plain parallel ones need not)."""
        return self.concurrency != "parallel" or self.max_parallel is not None


@dataclass(frozen=True)
class InFlight:
    """A run of one subscriber in one repository that has not finished; ``running`` once it started."""

    run_id: str
    lane: str
    running: bool


def superseded_reason(new_run_id: str) -> str:
    """The reason a cancelled run records: it names the run that superseded it."""
    return f"superseded by run {new_run_id}"


def lane_of(info: EventInfo) -> str:
    """The lane an event's runs belong to: its merge group, a deployment's environment, else its pull
    request, else its branch, else its ref."""
    if info.name == "merge_group":
        # A merge queue tests its groups side by side, each on top of the one before, and needs every one
        # to pass: a group must never supersede or wait for another group of the same base branch.
        return f"merge-group:{info.ref or '-'}"
    if info.name == "deployment" and info.environment is not None:
        # One environment takes one deployment at a time, whatever ref it deploys.
        return f"environment:{info.environment}"
    if info.pr_number is not None:
        return f"pr:{info.pr_number}"
    if info.branch is not None:
        return f"branch:{info.branch}"
    return f"ref:{info.ref or '-'}"


def _room(policy: Policy, running: int) -> bool:
    return policy.max_parallel is None or running < policy.max_parallel


def superseded(policy: Policy, in_flight: Sequence[InFlight], lane: str) -> tuple[str, ...]:
    """The runs a new run in ``lane`` cancels: with ``cancel-superseded``, all in flight in its lane."""
    if policy.concurrency != "cancel-superseded":
        return ()
    return tuple(r.run_id for r in in_flight if r.lane == lane)


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


class LaneRun(BaseModel):
    """A run in a book: its lane, whether it started, and its first-stage request (a ``RunStage``, JSON),
    kept to start it later or, should it be superseded, to cancel it even before it began."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    lane: str
    running: bool = False
    request: str


class LaneBook(BaseModel):
    """One subscriber's runs in flight in one repository, in request order; the lanes table's value."""

    model_config = ConfigDict(frozen=True)

    concurrency: Concurrency = "parallel"
    max_parallel: int | None = None
    runs: tuple[LaneRun, ...] = ()

    @property
    def policy(self) -> Policy:
        return Policy(self.concurrency, self.max_parallel)

    def in_flight(self) -> list[InFlight]:
        return [InFlight(r.run_id, r.lane, r.running) for r in self.runs]


@dataclass(frozen=True)
class LaneChange:
    """A book after a change, the runs to start now and the runs to cancel (with their requests)."""

    book: LaneBook
    start: tuple[LaneRun, ...] = ()
    cancel: tuple[LaneRun, ...] = ()


def _started(book: LaneBook, cancel: tuple[LaneRun, ...] = ()) -> LaneChange:
    starting = set(release(book.policy, book.in_flight()))
    runs = tuple(r.model_copy(update={"running": True}) if r.run_id in starting else r for r in book.runs)
    start = tuple(r for r in runs if r.run_id in starting)
    return LaneChange(book.model_copy(update={"runs": runs}), start, cancel)


def on_requested(book: LaneBook | None, policy: Policy, new: LaneRun) -> LaneChange:
    """File run ``new`` under ``policy`` (the subscriber's newest): it supersedes, starts, or waits.

    A run already in the book was filed before (a redelivered command): nothing changes.
    """
    book = book or LaneBook()
    if any(r.run_id == new.run_id for r in book.runs):
        return LaneChange(book)
    cancelled = set(superseded(policy, book.in_flight(), new.lane))
    cancel = tuple(r for r in book.runs if r.run_id in cancelled)
    kept = tuple(r for r in book.runs if r.run_id not in cancelled)
    filed = LaneBook(
        concurrency=policy.concurrency,
        max_parallel=policy.max_parallel,
        runs=(*kept, new.model_copy(update={"running": False})),
    )
    return _started(filed, cancel)


def on_finished(book: LaneBook | None, run_id: str) -> LaneChange:
    """Take finished run ``run_id`` out of the book; the waiting runs that now have room start."""
    book = book or LaneBook()
    if not any(r.run_id == run_id for r in book.runs):
        return LaneChange(book)  # already out: a repeated notice, or a run cancelled as superseded
    return _started(book.model_copy(update={"runs": tuple(r for r in book.runs if r.run_id != run_id)}))
