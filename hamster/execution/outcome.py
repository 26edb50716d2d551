"""Run one task: the user's function under its timeout, its outcome as data.

Async functions run on the event loop under ``wait_for``. Blocking functions with a timeout, or that may
have to be stopped (``killable``: the stage worker always asks, since a cancelled run or a lost lease must
stop the work), run in another process that is killed to stop them: one of the worker's task processes
(``hamster.execution.task_processes``), or a child forked for the attempt
(``hamster.execution.subprocess_runner``). A thread could not be killed. Other blocking functions run in a
worker thread. Either way the event loop (and Faust's heartbeats) keep going. Cancelling ``execute`` stops the
attempt: the async function is cancelled, the child killed.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from hamster.errors import TaskTimeout
from hamster.execution.stage_logs import mask, mask_json
from hamster.execution.subprocess_runner import Died, NotJson, Raised, run_killable
from hamster.execution.task_processes import TaskProcesses
from hamster.pipelines.context import TaskContext
from hamster.pipelines.task import Task

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


def masked(outcome: Outcome, secrets: Sequence[str]) -> Outcome:
    """The outcome as it may be recorded: every secret masked in its output, or its error and traceback."""
    if not secrets:
        return outcome
    if isinstance(outcome, Succeeded):
        return replace(outcome, output=mask_json(outcome.output, secrets))
    return replace(
        outcome, message=mask(outcome.message, secrets), traceback=mask(outcome.traceback, secrets)
    )


class NonRetryable(Exception):
    """Raise (or subclass) this in a task to fail without retries."""


def _check_output(task: Task, output: Any, max_bytes: int | None = None) -> Any:
    try:
        # Outputs travel in Kafka records as JSON; round-tripping also normalises tuples to lists.
        text = json.dumps(output)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {task.name} returned output that is not JSON-serialisable: {exc}") from None
    if max_bytes is not None and len(text.encode()) > max_bytes:
        raise NonRetryable(
            f"task {task.name} returned {len(text.encode())} bytes of output, over the limit of {max_bytes} "
            "(HAMSTER_MAX_OUTPUT_BYTES): keep large results elsewhere and return a reference"
        )
    return json.loads(text)


def _retryable(exc: BaseException) -> bool:
    return not isinstance(exc, NonRetryable)


async def execute(
    task: Task,
    ctx: TaskContext,
    *,
    killable: bool = False,
    max_output_bytes: int | None = None,
    processes: TaskProcesses | None = None,
) -> Outcome:
    """Run one attempt. ``processes``: the worker's task processes, where a blocking function that must be
    stoppable runs (else in a child forked for the attempt)."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    try:
        if task.is_async:
            result = await asyncio.wait_for(task.fn(ctx), timeout=task.timeout)
            return Succeeded(_check_output(task, result, max_output_bytes), elapsed())
        if task.timeout is None and not killable:
            # Nothing will ever need to stop it, so a thread is enough, and it spares each attempt the
            # fork (~50 ms here) that makes a timeout enforceable.
            result = await asyncio.to_thread(task.fn, ctx)
            return Succeeded(_check_output(task, result, max_output_bytes), elapsed())
        if processes is not None:
            child = await processes.run(task.name, ctx, task.timeout)
        else:
            child = await run_killable(task.fn, ctx, task.timeout, _retryable)
        if isinstance(child, Raised):
            return Failed(child.error_type, child.message, child.traceback, elapsed(), child.retryable)
        if isinstance(child, NotJson):
            message = f"task {task.name} returned output that is not JSON-serialisable: {child.reason}"
            return Failed("TypeError", message, "", elapsed())
        if isinstance(child, Died):
            message = f"task {task.name} ended without a result (exit code {child.exitcode})"
            return Failed("TaskError", message, "", elapsed())
        return Succeeded(_check_output(task, child.output, max_output_bytes), elapsed())
    except TimeoutError:
        err = TaskTimeout(f"task {task.name} ran past its timeout of {task.timeout} s")
        return Failed(type(err).__name__, str(err), "", elapsed())
    except Exception as exc:
        tb = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        return Failed(type(exc).__name__, str(exc), tb, elapsed(), not isinstance(exc, NonRetryable))
