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
    """Deploys nothing; names where the deployment would be, as a real deploy task does."""
    return {
        "deployment": ctx.event.deployment_id,
        "environment": ctx.event.environment,
        "environment_url": f"https://{ctx.event.environment}.{ctx.event.repo.split('/')[1]}.example.com",
    }


@task
def verify(ctx: Any) -> dict[str, Any]:
    return {"checked": ctx.outputs["ship"]["environment_url"]}


@task
def broken_verify(ctx: Any) -> None:
    raise RuntimeError("smoke test failed")


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
    Subscriber("deploy", events=["deployment"], repos=["acme/site"], pipeline=[ship, verify], report=True),
    Subscriber(
        "deploy-broken",
        events=["deployment"],
        repos=["acme/site-broken"],
        environments=["production"],
        pipeline=[ship, broken_verify],
        report=True,
    ),
    Subscriber("after-deploy", events=["deployment_status"], repos=["acme/site"], pipeline=[smoke]),
]
