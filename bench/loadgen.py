"""The load generator, run as its own process: ``python -m bench.loadgen <url> closed|open|count …``.

It prints one JSON object: every request's delivery id, wall-clock send time, latency and status.

- ``closed``: ``concurrency`` clients each send, wait for the answer, send again, for ``duration`` s.
- ``open``: requests start on a fixed schedule at ``rate``/s for ``duration`` s, whatever the answers do;
  latency counts from the scheduled start, so a stalled server is not hidden by the client waiting for it
  ("coordinated omission").
- ``count``: ``count`` requests through ``concurrency`` clients, as fast as they are answered.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from typing import Any

import aiohttp

from bench.payloads import SECRET, Body, bodies, headers

Sample = tuple[str, float, float, int]  # delivery id, wall-clock send time, latency s, HTTP status


async def _post(session: aiohttp.ClientSession, url: str, body: Body, started: float) -> Sample:
    delivery = str(uuid.uuid4())
    wall = time.time()
    try:
        async with session.post(url, data=body.raw, headers=headers(body, delivery)) as answer:
            await answer.read()
            status = answer.status
    except aiohttp.ClientError:
        status = 0
    return delivery, wall, time.perf_counter() - started, status


async def closed(url: str, pool: list[Body], concurrency: int, duration: float) -> list[Sample]:
    cycle = itertools.cycle(pool)
    out: list[Sample] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        deadline = time.perf_counter() + duration

        async def client() -> None:
            while time.perf_counter() < deadline:
                out.append(await _post(session, url, next(cycle), time.perf_counter()))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return out


async def open_loop(url: str, pool: list[Body], rate: float, duration: float) -> list[Sample]:
    cycle = itertools.cycle(pool)
    tasks = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as session:
        start = time.perf_counter()
        for i in range(int(rate * duration)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, url, next(cycle), due)))
        return list(await asyncio.gather(*tasks))


async def count(url: str, pool: list[Body], total: int, concurrency: int) -> list[Sample]:
    cycle = itertools.cycle(pool)
    left = itertools.count()
    out: list[Sample] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            while next(left) < total:
                out.append(await _post(session, url, next(cycle), time.perf_counter()))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("mode", choices=["closed", "open", "count"])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--secret", default=SECRET)
    parser.add_argument("--owner", default="bench", help="repositories <owner>/repo-<n>")
    args = parser.parse_args(argv)
    pool = bodies(secret=args.secret, owner=args.owner)
    run: Any
    if args.mode == "closed":
        run = closed(args.url, pool, args.concurrency, args.duration)
    elif args.mode == "open":
        run = open_loop(args.url, pool, args.rate, args.duration)
    else:
        run = count(args.url, pool, args.count, args.concurrency)
    t0 = time.perf_counter()
    samples = asyncio.run(run)
    json.dump({"elapsed_s": time.perf_counter() - t0, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
