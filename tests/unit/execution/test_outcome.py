"""Running one task: outputs, failures, timeouts, sync and async functions."""

from __future__ import annotations

import asyncio
import time

from hamster import task
from hamster.execution.outcome import Failed, NonRetryable, Succeeded, execute
from hamster.intake.github_events import EventInfo
from hamster.pipelines.context import TaskContext

CTX = TaskContext(
    event=EventInfo(name="push", delivery_id="d"),
    params={"p": 1},
    outputs={"a": 2},
    run_id="r",
    attempt=1,
    subscriber="s",
    stage="t",
)


async def test_sync_and_async_tasks_return_outputs():
    """Plain and async functions both run and their outputs come back as JSON values."""

    @task
    def plain(ctx):
        return {"sum": ctx.params["p"] + ctx.outputs["a"], "t": (1, 2)}

    @task
    async def coro(ctx):
        await asyncio.sleep(0)
        return "ok"

    out = await execute(plain, CTX)
    assert isinstance(out, Succeeded) and out.output == {"sum": 3, "t": [1, 2]}
    assert (await execute(coro, CTX)).output == "ok"


async def test_exception_is_a_failure_with_traceback():
    """A task fails by raising; the type, message and traceback are kept."""

    @task
    def boom(ctx):
        raise ValueError("bad input")

    out = await execute(boom, CTX)
    assert isinstance(out, Failed)
    assert (out.error_type, out.message, out.retryable) == ("ValueError", "bad input", True)
    assert "boom" in out.traceback


async def test_non_retryable():
    """NonRetryable failures say so."""

    @task
    def final(ctx):
        raise NonRetryable("no point")

    out = await execute(final, CTX)
    assert isinstance(out, Failed) and not out.retryable


async def test_output_must_be_json():
    """Output that is not JSON-serialisable fails the stage with a message naming the task."""

    @task
    def bad(ctx):
        return {1, 2}

    out = await execute(bad, CTX)
    assert isinstance(out, Failed) and "not JSON-serialisable" in out.message and "bad" in out.message


async def test_timeout():
    """A task past its timeout fails with TaskTimeout and the loop is not blocked meanwhile."""

    @task(timeout=0.2)
    def slow(ctx):
        time.sleep(1)

    started = time.monotonic()
    out = await execute(slow, CTX)
    assert isinstance(out, Failed) and out.error_type == "TaskTimeout"
    assert time.monotonic() - started < 1.0
