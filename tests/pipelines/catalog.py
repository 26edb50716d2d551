"""Subscribers the integration tests run. Each task notes that it ran in $HAMSTER_TEST_MARKS."""

from __future__ import annotations

import os
import time
from typing import Any

from hamster import Subscriber, task


def mark(ctx: Any) -> None:
    path = os.environ.get("HAMSTER_TEST_MARKS")
    if path:
        with open(path, "a") as marks:  # one short O_APPEND write per line: safe across processes
            marks.write(f"{ctx.run_id} {ctx.stage} {ctx.attempt}\n")


def span(ctx: Any, started: float, worker: int) -> None:
    """Note an execution that ran to its end: "run stage attempt worker-pid start end" in
    $HAMSTER_TEST_MARKS.spans (``worker``: the worker process, the parent of a blocking task's child)."""
    path = os.environ.get("HAMSTER_TEST_MARKS")
    if path:
        with open(path + ".spans", "a") as spans:
            spans.write(f"{ctx.run_id} {ctx.stage} {ctx.attempt} {worker} {started:.3f} {time.time():.3f}\n")


@task
def first(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"n": 1, "repo": ctx.event.repo}


@task
def second(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"n": 2}


@task(timeout=30)
def third(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {
        "sum": ctx.outputs["first"]["n"] + ctx.outputs["second"]["n"],
        "seen": sorted(ctx.outputs),
        "python": ctx.params.get("python"),
        "pr": ctx.event.pr_number,
    }


@task
def boom(ctx: Any) -> None:
    mark(ctx)
    raise RuntimeError("stage two exploded")


@task
def returns_set(ctx: Any) -> Any:
    mark(ctx)
    return {1, 2}


SUBSCRIBERS = [
    Subscriber(
        "three-stage",
        events=["pull_request"],
        actions=["opened"],
        repos=["acme/three", "load/*"],
        pipeline=[first, second, third],
        params={"python": "3.11"},
    ),
    Subscriber("fails", events=["pull_request"], repos=["acme/fails"], pipeline=[first, boom, third]),
    Subscriber("twin-a", events=["push"], repos=["acme/twins"], pipeline=[first]),
    Subscriber("twin-b", events=["push"], repos=["acme/twins"], branches=["main"], pipeline=[second]),
    Subscriber("toggle", events=["issue_comment"], repos=["acme/toggle"], pipeline=[first]),
    Subscriber("toggle-witness", events=["issue_comment"], repos=["acme/toggle"], pipeline=[second]),
    Subscriber("bad-output", events=["pull_request"], repos=["acme/badout"], pipeline=[returns_set, second]),
]
