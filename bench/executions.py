"""What the run log says about stage executions: which records counted, when each attempt ran, how many ran
at once, which stages ran twice, when a lease ran out. Pure: records in, figures out.

A record counts when the state machine accepts it as every worker folds the log (``hamster.runs.lifecycle``):
a claim that lost to an earlier one, or a record of an attempt that is no longer current, stays in the log and
changes nothing, so it is not an execution.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from hamster.errors import InvalidTransition
from hamster.runs.events import LeaseRenewed, RunEvent, StageFailed, StageStarted, StageSucceeded
from hamster.runs.lifecycle import RunState, evolve


@dataclass(frozen=True)
class Execution:
    """One stage attempt a worker claimed and ran; times in epoch seconds."""

    run_id: str
    index: int
    attempt: int
    worker: str  # "host:pid" of the worker that claimed it
    start: float  # its StageStarted
    end: float | None  # its StageSucceeded or StageFailed; None: it recorded no end (killed, taken over)


def accepted(records: Iterable[RunEvent]) -> list[RunEvent]:
    """One run's records that the state machine accepted, in log order."""
    state: RunState | None = None
    out = []
    for record in records:
        try:
            state = evolve(state, record)
        except InvalidTransition:
            continue
        out.append(record)
    return out


def executions(records: Iterable[RunEvent]) -> list[Execution]:
    """Every attempt of one run that was claimed, in the order they were claimed."""
    found: dict[tuple[int, int], Execution] = {}
    for r in accepted(records):
        if isinstance(r, StageStarted):
            found[(r.index, r.attempt)] = Execution(
                r.run_id, r.index, r.attempt, r.worker, r.occurred_at.timestamp(), None
            )
        elif isinstance(r, StageSucceeded | StageFailed) and (r.index, r.attempt) in found:
            key = (r.index, r.attempt)
            found[key] = replace(found[key], end=r.occurred_at.timestamp())
    return list(found.values())


def most_at_once(spans: Iterable[tuple[float, float]]) -> int:
    """The most (start, end) spans open at one moment; one ending as another starts does not overlap it."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = level = 0
    for _, change in edges:  # at equal times -1 sorts first: the slot is free before it is taken again
        level += change
        most = max(most, level)
    return most


def ran_twice(found: Iterable[Execution]) -> int:
    """How many (run, stage) were executed by more than one attempt."""
    counts = Counter((e.run_id, e.index) for e in found)
    return sum(1 for n in counts.values() if n > 1)


def ideal_makespan_s(stages: int, slots: int, stage_s: float) -> float:
    """The shortest time ``stages`` equal stages can take on ``slots`` slots: full rounds of them."""
    return math.ceil(stages / slots) * stage_s


def slots_available(slots: int, ready_at: Sequence[float | None], last_claim: float) -> int:
    """Slots of the workers that could take work before the last stage was claimed (ready_at: when each
    worker's stage slots were ready; None: never)."""
    return slots * sum(1 for t in ready_at if t is not None and t <= last_claim)


def lease_end(records: Iterable[RunEvent], index: int, attempt: int) -> float | None:
    """When the attempt's lease ran out (epoch s): its claim plus ``lease_s``, as its renewals moved it."""
    until = None
    for r in accepted(records):
        if isinstance(r, StageStarted) and (r.index, r.attempt) == (index, attempt) and r.lease_s:
            until = r.occurred_at.timestamp() + r.lease_s
        elif isinstance(r, LeaseRenewed) and (r.index, r.attempt) == (index, attempt):
            until = (r.occurred_at if r.released else r.until).timestamp()
    return until


def worker_pid(worker: str) -> int:
    """The process id in a record's ``worker`` field ("host:pid")."""
    return int(worker.rsplit(":", 1)[1])
