"""Subscribers the graph tests run: a diamond, a failure in one branch, matrices. Stages note their spans
(``tests.pipelines.catalog.span``) so tests can show what overlapped, and what each stage saw."""

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
async def fetch(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    span(ctx, time.time(), os.getpid())
    return {"repo": ctx.event.repo}


@task
def left(ctx: Any) -> dict[str, Any]:
    """Takes ``HAMSTER_TEST_STAGE_S`` seconds."""
    mark(ctx)
    started = time.time()
    time.sleep(stage_s())
    span(ctx, started, os.getppid())
    return {"side": "left", "saw": sorted(ctx.outputs)}


@task
def right(ctx: Any) -> dict[str, Any]:
    """Takes ``HAMSTER_TEST_STAGE_S`` seconds."""
    mark(ctx)
    started = time.time()
    time.sleep(stage_s())
    span(ctx, started, os.getppid())
    return {"side": "right", "saw": sorted(ctx.outputs)}


@task
async def join(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    span(ctx, time.time(), os.getpid())
    return {
        "saw": {name: out.get("side") if isinstance(out, dict) else out for name, out in ctx.outputs.items()}
    }


@task
async def breaks(ctx: Any) -> None:
    mark(ctx)
    raise RuntimeError("this branch is broken")


@task
async def after_break(ctx: Any) -> None:
    mark(ctx)


@task
async def after_ok(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"saw": sorted(ctx.outputs)}


@task
async def unit(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"python": ctx.params["python"], "db": ctx.params["db"], "shared": ctx.params.get("shared")}


@task
async def summary(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"instances": sorted(ctx.outputs)}


@task(timeout=900)
def sometimes(ctx: Any) -> dict[str, Any]:
    """The "bad" instance fails at once; the others hold (noting their pid) until they are stopped."""
    mark(ctx)
    if ctx.params["python"] == "bad":
        raise RuntimeError("bad python")
    hold_note(ctx, os.getpid())
    time.sleep(600)
    return {}


SUBSCRIBERS = [
    Subscriber(
        "diamond",
        events=["pull_request"],
        actions=["opened"],
        repos=["graph/diamond*"],
        pipeline={fetch: [], left: [fetch], right: [fetch], join: [left, right]},
    ),
    Subscriber(
        "branches",
        events=["pull_request"],
        actions=["opened"],
        repos=["graph/branches*"],
        pipeline={breaks: [], after_break: [breaks], fetch: [], after_ok: [fetch]},
    ),
    Subscriber(
        "matrix",
        events=["pull_request"],
        actions=["opened"],
        repos=["graph/matrix*"],
        params={"shared": "yes"},
        pipeline=[
            unit.matrix(
                python=["3.11", "3.12"],
                db=["sqlite", "postgres"],
                exclude=[{"python": "3.11", "db": "postgres"}],
            ),
            summary,
        ],
        report=True,
    ),
    Subscriber(
        "fail-fast",
        events=["pull_request"],
        actions=["opened"],
        repos=["graph/fast*"],
        pipeline={sometimes.matrix(python=["bad", "3.11", "3.12"], fail_fast=True): [], summary: [sometimes]},
    ),
]
