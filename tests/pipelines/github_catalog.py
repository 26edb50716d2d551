"""Subscribers for the GitHub integration tests: they report to the fake GitHub the test starts."""

from __future__ import annotations

import time
from typing import Any

from hamster import Subscriber, task
from hamster.tasks import checkout, comment, shell


@task
def build(ctx: Any) -> dict[str, Any]:
    return {"built": ctx.event.sha}


@task
def lint(ctx: Any) -> None:
    raise RuntimeError("lint found 3 problems")


@task
def answer(ctx: Any) -> str:
    return "seen"


@task
def until_superseded(ctx: Any) -> dict[str, Any]:
    """The first push of a PR holds (until a newer push cancels its run); later pushes pass at once."""
    if ctx.event.action == "opened":
        time.sleep(600)
    return {"sha": ctx.event.sha}


SUBSCRIBERS = [
    Subscriber(
        "gh-ci",
        events=["pull_request"],
        actions=["opened"],
        repos=["acme/gh-ok"],
        pipeline=[build, comment("Hamster built {outputs[build][built]}: all good.", name="say-ok")],
        report=True,
    ),
    Subscriber(
        "gh-fails", events=["pull_request"], repos=["acme/gh-fails"], pipeline=[build, lint], report=True
    ),
    Subscriber("gh-commands", events=["issue_comment"], repos=["acme/gh-comments"], pipeline=[answer]),
    # The README's pipeline: checkout, the tests in a shell, a comment; statuses around it.
    Subscriber(
        "gh-build",
        events=["pull_request"],
        repos=["acme/gh-build"],
        pipeline=[
            checkout,
            shell('test "$(cat app.txt)" = feature && echo "1 passed"', name="unit_tests", timeout=120),
            comment("Tests on {event.sha:.7}: {outputs[unit_tests][output]}", name="say-tests"),
        ],
        report=True,
    ),
    Subscriber(
        "gh-supersede",
        events=["pull_request"],
        repos=["acme/gh-supersede"],
        pipeline=[until_superseded],
        concurrency="cancel-superseded",
        report=True,
    ),
    Subscriber(
        "gh-slow",
        events=["pull_request"],
        repos=["acme/gh-slow"],
        pipeline=[shell("sleep 300", name="slow", timeout=2)],
        report=True,
    ),
]
