"""The subscribers module the benchmark's Hamster runs (``HAMSTER_SUBSCRIBERS=bench.pipeline``).

Three no-op stages as plain functions, the same code as the Celery baseline's tasks.
"""

from __future__ import annotations

from typing import Any

from hamster import Subscriber, task


@task
def noop_one(ctx: Any) -> None:
    return None


@task
def noop_two(ctx: Any) -> None:
    return None


@task
def noop_three(ctx: Any) -> None:
    return None


SUBSCRIBERS = [
    Subscriber(
        "bench-noop", events=["pull_request"], repos=["bench/*"], pipeline=[noop_one, noop_two, noop_three]
    )
]
