"""Sections 2 and 3, end to end and stage hop: webhook → 3-stage no-op pipeline → ``RunSucceeded``.

The same load goes to Hamster (intake, Kafka, one worker) and to the Celery baseline (a minimal aiohttp
view, Redis, one Celery worker running a chain of three no-op tasks). Latency is, for both, the wall-clock
time the pipeline recorded its end (Hamster: ``RunSucceeded.occurred_at``; Celery: the last task's
timestamp) minus the time the load generator sent the webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.harness import PYTHON, Hamster, Processes, free_port, http_status, loadgen, wait_until
from bench.payloads import SECRET
from bench.runlog import RunLog, hops_s, phases_s
from bench.stats import latency_summary, median, median_of_trials, percentile, rate
from hamster import ids
from hamster.settings import load_settings
from streams.topics import run_events_topic

log = logging.getLogger("bench.e2e")

SUBSCRIBER = "bench-noop"
Finished = Callable[[list[str], float], dict[str, float]]  # delivery ids, timeout → finish time by delivery


def _accepted(answer: dict[str, Any]) -> dict[str, float]:
    """delivery id → send time, for the webhooks the server accepted."""
    return {s[0]: s[1] for s in answer["samples"] if 200 <= s[3] < 300}


def _low_load(
    url: str, finished: Finished, rate_per_s: float, duration: float
) -> tuple[dict[str, float], dict[str, float]]:
    sent = _accepted(loadgen(url, "open", rate=rate_per_s, duration=duration))
    done = finished(list(sent), 120.0)
    latencies = [done[d] - sent[d] for d in sent]
    return latency_summary(latencies), sent


def _burst(url: str, finished: Finished, count: int, concurrency: int) -> dict[str, float]:
    answer = loadgen(url, "count", count=count, concurrency=concurrency)
    sent = _accepted(answer)
    done = finished(list(sent), 300.0)
    span = max(done.values()) - min(sent.values())
    return {"runs_per_s": rate(len(done), span), "accepted": len(sent), **latency_summary(
        [done[d] - sent[d] for d in sent])}  # fmt: skip


def _measure(
    url: str, finished: Finished, opts: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    _burst(url, finished, 10, 2)  # warm-up, not counted
    low, sent_all = [], []
    for _ in range(opts["trials"]):
        summary, sent = _low_load(url, finished, opts["low_rate"], opts["low_duration"])
        low.append(summary)
        sent_all.append(sent)
        log.info("%s low load: p50 %.1f ms, p99 %.1f ms", opts["label"], summary["p50_ms"], summary["p99_ms"])
    burst = []
    for _ in range(opts["trials"]):
        burst.append(_burst(url, finished, opts["burst"], opts["burst_concurrency"]))
        log.info("%s burst: %.1f runs/s", opts["label"], burst[-1]["runs_per_s"])
    result = {
        "low_load": {"rate_per_s": opts["low_rate"], **median_of_trials(low)},
        "burst": {
            "count": opts["burst"],
            "concurrency": opts["burst_concurrency"],
            **median_of_trials(burst),
        },
    }
    return result, sent_all


def hamster_e2e(
    procs: Processes, bootstrap: str, home: Path, opts: dict[str, Any], subscribers: str = "bench.pipeline"
) -> dict[str, Any]:
    hamster = Hamster(procs, bootstrap, home, opts["partitions"], subscribers)
    hamster.start_intake()
    for _ in range(opts["workers"]):
        hamster.start_worker()
    topic = run_events_topic(load_settings(namespace=hamster.namespace))
    runlog = RunLog(bootstrap, topic)

    def finished(deliveries: list[str], timeout: float) -> dict[str, float]:
        by_run = {ids.run_id(d, SUBSCRIBER): d for d in deliveries}
        done = runlog.wait_finished(list(by_run), timeout)
        return {by_run[r]: t for r, t in done.items()}

    try:
        result, sent_all = _measure(hamster.url, finished, {**opts, "label": f"hamster ({subscribers})"})
        # Hop and phases from the low-load runs only: under a burst they measure the queue, not the hop.
        hops, phases = [], []
        for sent in sent_all:
            for delivery, at in sent.items():
                records = runlog.records[ids.run_id(delivery, SUBSCRIBER)]
                hops += hops_s(records)
                phases.append(phases_s(records, at))
        result["hop"] = {
            "p50_ms": percentile(hops, 50) * 1000,
            "p99_ms": percentile(hops, 99) * 1000,
            "n": len(hops),
        }
        result["phases_p50_ms"] = {
            k: median(p[k] for p in phases if k in p) * 1000
            for k in dict.fromkeys(k for p in phases for k in p)
        }
    finally:
        runlog.close()
        for name in [n for n in procs.procs if n.startswith(hamster.namespace)]:
            procs.stop(name)
    return result


def _seconds(value: Any) -> float:
    """A timestamp the Celery task stored in Redis (redis-py answers bytes)."""
    return float(value.decode() if isinstance(value, bytes) else value)


def celery_e2e(procs: Processes, home: Path, opts: dict[str, Any]) -> dict[str, Any]:
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    procs.spawn(
        "redis",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(home)],
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)

    def redis_up() -> bool:
        procs.check("redis")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(redis_up, 30, "redis-server")
    env = {"BENCH_REDIS_URL": redis_url}
    procs.spawn(
        "celery-worker",
        [PYTHON, "-m", "celery", "-A", "bench.celery_app", "worker", "--loglevel", "WARNING",
         "--concurrency", str(opts["celery_concurrency"]), "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-n", "bench@localhost"],
        env,
    )  # fmt: skip
    web_port = free_port()
    procs.spawn(
        "celery-web",
        [PYTHON, "-m", "bench.servers", "celery-web", "--port", str(web_port), "--secret", SECRET,
         "--log", str(home / "celery-web.requests.log")],
        env,
    )  # fmt: skip

    def web_up() -> bool:
        procs.check("celery-web")
        return http_status(f"http://127.0.0.1:{web_port}/healthz") == 200

    wait_until(web_up, 60, "the Celery webhook view")

    def finished(deliveries: list[str], timeout: float) -> dict[str, float]:
        def all_done() -> dict[str, float] | None:
            procs.check("celery-worker")
            values = client.hmget("bench:done", deliveries)
            return (
                None
                if any(v is None for v in values)
                else {d: _seconds(v) for d, v in zip(deliveries, values, strict=True)}
            )

        return dict(wait_until(all_done, timeout, f"{len(deliveries)} Celery chains", every=0.25))

    try:
        url = f"http://127.0.0.1:{web_port}/webhooks/github"
        result, _ = _measure(url, finished, {**opts, "label": "celery"})
    finally:
        for name in ("celery-web", "celery-worker", "redis"):
            procs.stop(name)
    return result
