"""Subscribers with concurrency control: runs that supersede, runs in series, runs under a cap.

Their first task holds until the test opens the run's gate (a file named after the run in
$HAMSTER_TEST_MARKS.gates), so a test decides when each run may end; it notes in $HAMSTER_TEST_MARKS.holders
that it is holding, with its pid.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hamster import Subscriber, task
from tests.pipelines.catalog import mark
from tests.pipelines.faults import hold_note


def gate_of(marks: str | Path, run_id: str) -> Path:
    return Path(f"{marks}.gates") / run_id


@task
def held(ctx: Any) -> dict[str, Any]:
    """Holds until the run's gate is opened. (Blocking, no timeout: killable only because its subscribers
    limit concurrency, which is what a cancellation needs.)"""
    mark(ctx)
    marks = os.environ["HAMSTER_TEST_MARKS"]
    hold_note(ctx, os.getpid())
    while not gate_of(marks, ctx.run_id).exists():
        time.sleep(0.05)
    return {"pr": ctx.event.pr_number, "sha": ctx.event.sha}


@task
def after(ctx: Any) -> dict[str, Any]:
    mark(ctx)
    return {"after": sorted(ctx.outputs)}


SUBSCRIBERS = [
    Subscriber(
        "supersede",
        events=["pull_request"],
        repos=["lanes/supersede"],
        pipeline=[held, after],
        concurrency="cancel-superseded",
    ),
    Subscriber(
        "serial", events=["pull_request"], repos=["lanes/serial"], pipeline=[held], concurrency="serial"
    ),
    Subscriber("capped", events=["pull_request"], repos=["lanes/capped"], pipeline=[held], max_parallel=1),
]
