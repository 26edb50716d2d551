"""Subscribers the replay and audit tests run. Each task notes that it ran in $HAMSTER_TEST_MARKS.

``flaky`` fails until the file ``$HAMSTER_TEST_MARKS.fixed`` exists: the test "fixes" the task by creating
it, then replays the failed run from that stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hamster import Subscriber, task
from hamster.execution.outcome import NonRetryable
from tests.pipelines.catalog import mark


@task
def checkout(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"repo": ctx.event.repo, "pr": ctx.event.pr_number}


@task
def check(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"checked": ctx.outputs["checkout"]["pr"]}


@task
def prepare(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"prepared_by": ctx.run_id}


@task
def flaky(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    if not Path(os.environ["HAMSTER_TEST_MARKS"] + ".fixed").exists():
        raise NonRetryable("flaky is broken until fixed")
    return {"fixed": True}


@task
def finish(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"prepared_by": ctx.outputs["prepare"]["prepared_by"], "flaky": ctx.outputs["flaky"]}


SUBSCRIBERS = [
    Subscriber(
        "replayable",
        events=["pull_request"],
        actions=["opened"],
        repos=["replay/*"],
        pipeline=[checkout, check],
    ),
    Subscriber("fixable", events=["pull_request"], repos=["fix/*"], pipeline=[prepare, flaky, finish]),
]
