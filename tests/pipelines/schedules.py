"""Subscribers the schedule tests run: a schedule ticking every 3 seconds on one repository and branch."""

from __future__ import annotations

from typing import Any

from hamster import Subscriber, task
from tests.pipelines.catalog import mark


@task
async def nightly(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"tick": ctx.event.payload["tick"], "branch": ctx.event.branch, "event": ctx.event.name}


SUBSCRIBERS = [
    Subscriber(
        "ticker", schedule="* * * * * */3", repos=["sched/app"], branches=["main"], pipeline=[nightly]
    ),
]
