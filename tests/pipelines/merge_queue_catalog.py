"""Subscribers for the merge queue and deployment tests: they report to the fake GitHub the test starts."""

from __future__ import annotations

import time
from typing import Any

from hamster import Subscriber, task


@task
def facts(ctx: Any) -> dict[str, Any]:
    return {"sha": ctx.event.sha, "ref": ctx.event.ref, "branch": ctx.event.branch}


@task(timeout=900)
def hold(ctx: Any) -> None:
    """Runs until cancelled (a blocking task with a timeout runs in a child process, which is killed)."""
    time.sleep(600)


@task
def ship(ctx: Any) -> dict[str, Any]:
    return {"deployment": ctx.event.deployment_id, "environment": ctx.event.environment}


@task
def smoke(ctx: Any) -> dict[str, Any]:
    return {"state": ctx.event.payload["deployment_status"]["state"]}


SUBSCRIBERS = [
    # The README's required check for a merge queue: the same subscriber for pull requests and groups.
    Subscriber(
        "mq-required",
        events=["pull_request", "merge_group"],
        actions=["opened", "synchronize", "checks_requested"],
        repos=["acme/mq-ok"],
        pipeline=[facts],
        report=True,
    ),
    Subscriber(
        "mq-slow",
        events=["merge_group"],
        actions=["checks_requested"],
        repos=["acme/mq-slow"],
        pipeline=[hold],
        report=True,
    ),
    Subscriber("deploy", events=["deployment"], repos=["acme/site"], pipeline=[facts, ship], report=True),
    Subscriber("after-deploy", events=["deployment_status"], repos=["acme/site"], pipeline=[smoke]),
]
