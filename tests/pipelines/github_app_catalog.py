"""Subscribers for the GitHub App tests: they report as the app's installations on the fake GitHub.

Each task notes that it ran in $HAMSTER_TEST_MARKS ("run stage attempt"), so a test can tell which stages
a rerun ran again.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hamster import Subscriber, approval, task
from hamster.tasks import checkout, comment, shell


def mark(ctx: Any) -> None:
    path = os.environ.get("HAMSTER_TEST_MARKS")
    if path:
        with open(path, "a") as marks:  # one short O_APPEND write per line: safe across processes
            marks.write(f"{ctx.run_id} {ctx.stage} {ctx.attempt}\n")


@task(name="app_build")
def app_build(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"built": ctx.event.sha}


@task(name="app_lint")
def app_lint(ctx: Any) -> None:
    mark(ctx)
    raise RuntimeError("lint found 2 problems")


@task(name="app_hold")
def app_hold(ctx: Any) -> None:
    """Holds until the run is cancelled (the test's Cancel click)."""
    mark(ctx)
    time.sleep(600)


@task(name="app_ship")
def app_ship(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"approved_by": ctx.outputs["app_go"]["approved_by"]}


SUBSCRIBERS = [
    Subscriber(
        "app-ci",
        events=["pull_request"],
        repos=["acme/app-one", "widgets/app-two", "acme/app-again"],
        pipeline=[app_build, comment("Built {outputs[app_build][built]:.7} as the app.", name="app_say")],
        report=True,
        checks=True,
    ),
    Subscriber(
        "app-fails",
        events=["pull_request"],
        repos=["acme/app-fails"],
        pipeline=[app_build, app_lint],
        report=True,
        checks=True,
    ),
    Subscriber(
        "app-gated",
        events=["pull_request"],
        repos=["acme/app-gated-*"],
        pipeline={app_build: [], approval("app_go", timeout_s=600): [app_build], app_ship: ["app_go"]},
        checks=True,
    ),
    Subscriber(
        "app-hold", events=["pull_request"], repos=["acme/app-hold"], pipeline=[app_hold], checks=True
    ),
    Subscriber(
        "app-checkout",
        events=["pull_request"],
        repos=["acme/app-build"],
        pipeline=[
            checkout,
            shell(
                'test "$(cat app.txt)" = feature && echo "checked out" && cat .git/config', name="app_test"
            ),
        ],
        report=True,
        checks=True,
    ),
]
