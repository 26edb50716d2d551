"""Run one task: the user's function under its timeout, its outcome as data.

Async functions run on the event loop under ``wait_for``. Blocking functions with a timeout, or of a run
that may be cancelled (``killable``: its subscriber cancels superseded runs), run in a forked child per
attempt (``hamster.subprocess_runner``), so a timeout or a cancellation really stops the work: a thread
could not be killed. Other blocking functions run in a worker thread. Either way the event loop (and
Faust's heartbeats) keep going. Cancelling ``execute`` stops the attempt: the async function is cancelled,
the child killed.
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
from hamster.subprocess_runner import Died, NotJson, Raised, run_killable
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


def _retryable(exc: BaseException) -> bool:
    return not isinstance(exc, NonRetryable)


async def execute(task: Task, ctx: TaskContext, *, killable: bool = False) -> Outcome:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    try:
        if task.is_async:
            result = await asyncio.wait_for(task.fn(ctx), timeout=task.timeout)
            return Succeeded(_check_output(task, result), elapsed())
        if task.timeout is None and not killable:
            # Nothing will ever need to stop it, so a thread is enough, and it spares each attempt the
            # fork (~50 ms here) that makes a timeout enforceable.
            result = await asyncio.to_thread(task.fn, ctx)
            return Succeeded(_check_output(task, result), elapsed())
        child = await run_killable(task.fn, ctx, task.timeout, _retryable)
        if isinstance(child, Raised):
            return Failed(child.error_type, child.message, child.traceback, elapsed(), child.retryable)
        if isinstance(child, NotJson):
            message = f"task {task.name} returned output that is not JSON-serialisable: {child.reason}"
            return Failed("TypeError", message, "", elapsed())
        if isinstance(child, Died):
            message = f"task {task.name} ended without a result (exit code {child.exitcode})"
            return Failed("TaskError", message, "", elapsed())
        return Succeeded(child.output, elapsed())
    except TimeoutError:
        err = TaskTimeout(f"task {task.name} ran past its timeout of {task.timeout} s")
        return Failed(type(err).__name__, str(err), "", elapsed())
    except Exception as exc:
        tb = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        return Failed(type(exc).__name__, str(exc), tb, elapsed(), not isinstance(exc, NonRetryable))
