"""What the stage-worker tests read back: when and where each stage execution ran."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hamster.errors import InvalidTransition
from hamster.runs.lifecycle import RunState, evolve
from tests.integration.fault_tools import run_log
from tests.integration.system import System, wait_until


@dataclass(frozen=True)
class Span:
    run_id: str
    stage: str
    attempt: int
    worker: int  # pid of the worker process that ran it
    start: float
    end: float


def spans(system: System) -> list[Span]:
    """Every stage execution that ran to its end (``tests.pipelines.slots.span``)."""
    path = system.marks.with_name(system.marks.name + ".spans")
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        run_id, stage, attempt, worker, start, end = line.split()
        found.append(Span(run_id, stage, int(attempt), int(worker), float(start), float(end)))
    return found


def peak(found: list[Span]) -> int:
    """The most executions that ran at the same moment."""
    edges = sorted([(s.start, 1) for s in found] + [(s.end, -1) for s in found], key=lambda e: (e[0], e[1]))
    most = level = 0
    for _, change in edges:
        level += change
        most = max(most, level)
    return most


def executions(system: System, run_ids: set[str]) -> Counter[tuple[str, str]]:
    """How many times each (run, stage) of these runs started executing, any attempt."""
    return Counter((r, s) for r, s, _ in system.marks_list() if r in run_ids)


def folded(system: System, run_id: str) -> tuple[RunState | None, list[Any]]:
    """(the run as the state machine folds its records, the records it refused), from the run log itself.
    The log is the truth at once; the SQL projection of a killed worker's partitions waits for Kafka to
    hand them to another worker (the session timeout)."""
    state: RunState | None = None
    refused = []
    for record in run_log(system, run_id):
        try:
            state = evolve(state, record)
        except InvalidTransition:
            refused.append(record)
    return state, refused


def wait_ended(system: System, run_id: str, timeout: float = 60.0) -> RunState:
    """The run once its run log says it ended."""

    def ended() -> RunState | None:
        state, _ = folded(system, run_id)
        return state if state is not None and state.finished else None

    found: RunState = wait_until(ended, timeout, 0.5, what=f"run {run_id} to end in the run log")
    return found
