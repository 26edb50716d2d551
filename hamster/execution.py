"""Run one task: the user's function under its timeout, its outcome as data.

Blocking functions run in a worker thread so the event loop (and Faust's heartbeats) keep going.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import dataclass
from typing import Any

from hamster.context import TaskContext
from hamster.errors import TaskTimeout
from hamster.task import Task

MAX_TRACEBACK = 16 * 1024


@dataclass(frozen=True)
class Succeeded:
    output: Any
    duration_ms: float


@dataclass(frozen=True)
class Failed:
    error_type: str
    message: str
    traceback: str
    duration_ms: float
    retryable: bool = True


Outcome = Succeeded | Failed


class NonRetryable(Exception):
    """Raise (or subclass) this in a task to fail without retries."""


def _check_output(task: Task, output: Any) -> Any:
    try:
        # Outputs travel in Kafka records as JSON; round-tripping also normalises tuples to lists.
        return json.loads(json.dumps(output))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {task.name} returned output that is not JSON-serialisable: {exc}") from None


async def execute(task: Task, ctx: TaskContext) -> Outcome:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    try:
        if task.is_async:
            result = await asyncio.wait_for(task.fn(ctx), timeout=task.timeout)
        else:
            result = await asyncio.wait_for(asyncio.to_thread(task.fn, ctx), timeout=task.timeout)
        return Succeeded(_check_output(task, result), elapsed())
    except TimeoutError:
        err = TaskTimeout(f"task {task.name} ran past its timeout of {task.timeout} s")
        return Failed(type(err).__name__, str(err), "", elapsed())
    except Exception as exc:
        tb = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        return Failed(type(exc).__name__, str(exc), tb, elapsed(), not isinstance(exc, NonRetryable))
