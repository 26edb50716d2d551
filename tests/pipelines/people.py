"""Subscribers the manual-run and approval tests run: a pipeline started by hand, and one that waits for a
person before it deploys."""

from __future__ import annotations

from typing import Any

from hamster import Subscriber, approval, task
from tests.pipelines.catalog import mark


@task
async def describe(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    event = ctx.event
    return {
        "event": event.name,
        "repo": event.repo,
        "branch": event.branch,
        "sha": event.sha,
        "sender": event.sender,
        "params": ctx.params,
    }


@task
async def build(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"built": ctx.event.sha}


@task
async def ship(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"approval": ctx.outputs["go"], "built": ctx.outputs["build"]["built"]}


SUBSCRIBERS = [
    # Its filters match nothing GitHub sends in these tests: only `hamster trigger` starts it.
    Subscriber(
        "by-hand",
        events=["push"],
        repos=["nobody/ever"],
        pipeline=[describe],
        params={"python": "3.12", "kept": "yes"},
    ),
    Subscriber(
        "gated",
        events=["pull_request"],
        actions=["opened"],
        repos=["people/gated*"],
        pipeline={build: [], approval("go", timeout_s=600): [build], ship: ["go"]},
    ),
    Subscriber(
        "gated-quick",
        events=["pull_request"],
        actions=["opened"],
        repos=["people/timeout*"],
        pipeline={approval("go", timeout_s=2): [], ship: ["go"]},
    ),
]
