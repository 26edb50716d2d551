"""Subscribers the fault tests run: tasks that hang, crash, fail once, or refuse to be retried.

Each task notes that it ran in $HAMSTER_TEST_MARKS ("run stage attempt"); tasks that wait to be cut off also
note, in $HAMSTER_TEST_MARKS.holders, the worker running them and the processes to check are gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from typing import Any

from hamster import Subscriber, task
from hamster.execution.outcome import NonRetryable
from tests.pipelines.catalog import mark, span


def hold_note(ctx: Any, *pids: int) -> None:
    path = os.environ.get("HAMSTER_TEST_MARKS")
    if path:
        with open(path + ".holders", "a") as notes:
            # Blocking tasks run in a child forked by the worker: the parent is the worker.
            notes.write(" ".join(map(str, (ctx.run_id, ctx.stage, ctx.attempt, os.getppid(), *pids))) + "\n")


@task(timeout=900)
def hold(ctx: Any) -> dict[str, Any]:
    """Attempt 1 waits to be cut off by a dead worker; later attempts finish at once. (The timeout makes
    it run in a child of the worker, which must die with it.)"""
    mark(ctx)
    if ctx.attempt == 1:
        hold_note(ctx, os.getpid())
        time.sleep(600)
    return {"attempt": ctx.attempt}


@task
async def cut(ctx: Any) -> dict[str, Any]:
    """Attempt 1 SIGKILLs its own worker (it runs on the worker's loop) just after the run log recorded its
    start, before the runs table's changelog could follow; later attempts finish at once."""
    mark(ctx)
    if ctx.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"attempt": ctx.attempt}


@task
def follow(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    span(ctx, time.time(), os.getppid())
    return {"after": ctx.outputs}


@task(timeout=3, retries=1)
def hang(ctx: Any) -> None:
    """Never returns, and starts a process of its own that would outlive a mere thread timeout."""
    mark(ctx)
    sleeper = subprocess.Popen(["sleep", "600"])
    hold_note(ctx, os.getpid(), sleeper.pid)
    time.sleep(600)


@task(timeout=2)
async def async_hang(ctx: Any) -> None:
    mark(ctx)
    await asyncio.sleep(600)


@task(retries=2)
def flaky(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt fails")
    return {"attempt": ctx.attempt}


@task(retries=3)
def refuses(ctx: Any) -> None:
    mark(ctx)
    raise NonRetryable("retrying cannot help")


@task
def exits(ctx: Any) -> None:
    """Ends its own process without a word (as a crash in C code would)."""
    os._exit(3)


@task
def quick(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    span(ctx, time.time(), os.getppid())
    return {"repo": ctx.event.repo}


SUBSCRIBERS = [
    Subscriber("crash", events=["pull_request"], repos=["faults/crash"], pipeline=[hold, follow]),
    Subscriber("cut", events=["pull_request"], repos=["faults/cut"], pipeline=[quick, cut, follow]),
    Subscriber("timeout", events=["pull_request"], repos=["faults/timeout"], pipeline=[hang, follow]),
    Subscriber("async-timeout", events=["pull_request"], repos=["faults/async"], pipeline=[async_hang]),
    Subscriber("flaky", events=["pull_request"], repos=["faults/flaky"], pipeline=[flaky, follow]),
    Subscriber("exits", events=["pull_request"], repos=["faults/exits"], pipeline=[exits]),
    Subscriber("refuses", events=["pull_request"], repos=["faults/refuses"], pipeline=[refuses, follow]),
    Subscriber(
        "steady", events=["pull_request"], actions=["opened"], repos=["soak/*"], pipeline=[quick, follow]
    ),
]
