"""Subscribers the stage-worker tests run: stages that take a while, and note when and where they ran.

Each execution appends "run stage attempt worker-pid start end" (epoch seconds) to $HAMSTER_TEST_MARKS.spans
when it ends, and "run stage attempt" to $HAMSTER_TEST_MARKS when it starts (``catalog.mark``). Blocking
tasks run in a child of the worker, so the worker is the child's parent. The stage length is
$HAMSTER_TEST_STAGE_S (seconds, default 3).
"""

from __future__ import annotations

import os
import time
from typing import Any

from hamster import Subscriber, task
from tests.pipelines.catalog import mark, span
from tests.pipelines.faults import hold_note


def stage_s() -> float:
    return float(os.environ.get("HAMSTER_TEST_STAGE_S", "3"))


@task
def slow(ctx: Any) -> dict[str, Any]:
    """Takes ``HAMSTER_TEST_STAGE_S`` seconds."""
    mark(ctx)
    started = time.time()
    time.sleep(stage_s())
    span(ctx, started, os.getppid())
    return {"slept": stage_s()}


@task
async def brief(ctx: Any) -> dict[str, Any]:
    """Done at once, on the worker's event loop."""
    mark(ctx)
    span(ctx, time.time(), os.getpid())
    return {"repo": ctx.event.repo}


@task
async def last(ctx: Any) -> dict[str, Any]:
    """Done at once: the stage after the slow one."""
    mark(ctx)
    span(ctx, time.time(), os.getpid())
    return {"seen": sorted(ctx.outputs)}


@task
def stalls(ctx: Any) -> dict[str, Any]:
    """Attempt 1 notes where it runs and takes 600 s (until it is stopped); later attempts finish at once."""
    mark(ctx)
    started = time.time()
    if ctx.attempt == 1:
        hold_note(ctx, os.getpid())
        time.sleep(600)
    span(ctx, started, os.getppid())
    return {"attempt": ctx.attempt}


@task
def pauses(ctx: Any) -> dict[str, Any]:
    """Attempt 1 notes where it runs and takes ``HAMSTER_TEST_STAGE_S`` seconds; later ones finish at once."""
    mark(ctx)
    started = time.time()
    if ctx.attempt == 1:
        hold_note(ctx, os.getpid())
        time.sleep(stage_s())
    span(ctx, started, os.getppid())
    return {"attempt": ctx.attempt}


SUBSCRIBERS = [
    Subscriber("long", events=["pull_request"], actions=["opened"], repos=["slots/*"], pipeline=[slow]),
    Subscriber(
        "steps", events=["pull_request"], actions=["opened"], repos=["steps/*"], pipeline=[brief, slow, last]
    ),
    Subscriber(
        "stalls", events=["pull_request"], actions=["opened"], repos=["stall/*"], pipeline=[stalls, brief]
    ),
    Subscriber(
        "pauses", events=["pull_request"], actions=["opened"], repos=["pause/*"], pipeline=[pauses, brief]
    ),
    Subscriber("quick", events=["pull_request"], actions=["opened"], repos=["quick/*"], pipeline=[brief]),
]
