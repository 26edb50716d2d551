"""The same three no-op stages written as ``async def`` (``HAMSTER_SUBSCRIBERS=bench.pipeline_async``).

Hamster runs a plain ``def`` task in a thread (in a forked child per attempt when it has a timeout, so
the timeout can stop it) and an ``async def`` task on the worker's event loop; the benchmark measures both.
"""

from __future__ import annotations

from typing import Any

from hamster import Subscriber, task


@task
async def noop_one(ctx: Any) -> None:
    return None


@task
async def noop_two(ctx: Any) -> None:
    return None


@task
async def noop_three(ctx: Any) -> None:
    return None


SUBSCRIBERS = [
    Subscriber(
        "bench-noop", events=["pull_request"], repos=["bench/*"], pipeline=[noop_one, noop_two, noop_three]
    )
]
