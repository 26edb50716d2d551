"""Example subscribers: what ``make dev`` runs. Copy this module to start your own.

Point ``HAMSTER_SUBSCRIBERS`` at your module (a dotted path importable from the working directory).
"""

from __future__ import annotations

from typing import Any

from hamster import Subscriber, task


@task
def describe(ctx: Any) -> dict[str, Any]:
    """What triggered the run, as later stages will want it."""
    return {
        "repo": ctx.event.repo,
        "sha": ctx.event.sha,
        "branch": ctx.event.branch,
        "pr": ctx.event.pr_number,
        "sender": ctx.event.sender,
    }


@task(timeout=60)
def lint_title(ctx: Any) -> dict[str, Any]:
    """A toy check: pull request titles should not shout."""
    title = (ctx.event.payload.get("pull_request") or {}).get("title") or ""
    warnings = int(title.isupper()) + int(title.endswith("!"))
    return {"title": title, "warnings": warnings}


@task
def summary(ctx: Any) -> dict[str, Any]:
    """Reads the earlier stages' outputs, as real pipelines do."""
    return {
        "text": f"{ctx.outputs['describe']['repo']}@{(ctx.event.sha or '')[:7]}: "
        f"{ctx.outputs['lint_title']['warnings']} warning(s)",
        "params": ctx.params,
    }


SUBSCRIBERS = [
    Subscriber(
        "pr-checks",
        events=["pull_request"],
        actions=["opened", "synchronize", "reopened"],
        pipeline=[describe, lint_title, summary],
        params={"python": "3.11"},
    ),
    Subscriber(
        "push-main",
        events=["push"],
        branches=["main", "master"],
        pipeline=[describe],
    ),
]
