"""The subscribers module of the slots section (``HAMSTER_SUBSCRIBERS=bench.pipeline_slow``): blocking stages
that take a while, as a build or a test suite does.

- ``bench-slow`` (repositories ``slow/*``): one stage that blocks for ``BENCH_STAGE_S`` seconds (default 8).
- ``bench-stall`` (repositories ``stall/*``): attempt 1 blocks for ``BENCH_STALL_S`` seconds (default 120),
  long enough for the benchmark to kill its worker; a later attempt, the takeover, returns at once.

The lengths come from the environment so one module serves the full run and ``--quick``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hamster import Subscriber, task


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


@task
def slow(ctx: Any) -> dict[str, Any]:
    time.sleep(_seconds("BENCH_STAGE_S", 8.0))
    return {"attempt": ctx.attempt}


@task
def stall(ctx: Any) -> dict[str, Any]:
    if ctx.attempt == 1:
        time.sleep(_seconds("BENCH_STALL_S", 120.0))
    return {"attempt": ctx.attempt}


SUBSCRIBERS = [
    Subscriber("bench-slow", events=["pull_request"], repos=["slow/*"], pipeline=[slow]),
    Subscriber("bench-stall", events=["pull_request"], repos=["stall/*"], pipeline=[stall]),
]
