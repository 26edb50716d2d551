"""The Celery baseline, over a Redis broker (``BENCH_REDIS_URL``).

- ``start_pipeline``: three no-op tasks chained. Each hands the event on unchanged, as Hamster's stages carry
  the event from one to the next; the last one records when the chain finished in a Redis hash, which the
  benchmark reads as Hamster's ``RunSucceeded``.
- ``start_slow``: one task that blocks for ``BENCH_STAGE_S`` seconds, as ``bench.pipeline_slow``'s stage
  does; it records when it ran as well, so the benchmark can count how many ran at once.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery, chain

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6399/0")
DONE_KEY = "bench:done"
SPANS_KEY = "bench:spans"  # delivery → "start end" (epoch seconds) of a slow task

app = Celery("bench", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True
)
_redis = redis.Redis.from_url(REDIS_URL)


@app.task(name="bench.first")  # type: ignore[untyped-decorator]
def first(event: dict[str, Any]) -> dict[str, Any]:
    return event


@app.task(name="bench.second")  # type: ignore[untyped-decorator]
def second(event: dict[str, Any]) -> dict[str, Any]:
    return event


@app.task(name="bench.third")  # type: ignore[untyped-decorator]
def third(event: dict[str, Any]) -> None:
    _redis.hset(DONE_KEY, event["delivery"], repr(time.time()))


@app.task(name="bench.slow")  # type: ignore[untyped-decorator]
def slow(event: dict[str, Any]) -> None:
    started = time.time()
    time.sleep(float(os.environ.get("BENCH_STAGE_S", "8")))
    ended = time.time()
    _redis.hset(SPANS_KEY, event["delivery"], f"{started!r} {ended!r}")
    _redis.hset(DONE_KEY, event["delivery"], repr(ended))


def start_pipeline(delivery: str, payload: dict[str, Any]) -> None:
    chain(first.s({"delivery": delivery, "payload": payload}), second.s(), third.s()).apply_async()


def start_slow(delivery: str, payload: dict[str, Any]) -> None:
    slow.delay({"delivery": delivery, "payload": payload})
