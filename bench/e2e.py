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

from bench.harness import Celery, Hamster, Processes, accepted_sends, loadgen
from bench.runlog import RunLog, hops_s, phases_s
from bench.stats import latency_summary, median, median_of_trials, percentile, rate
from hamster import ids
from hamster.settings import load_settings
from streams.topics import run_events_topic

log = logging.getLogger("bench.e2e")

SUBSCRIBER = "bench-noop"
Finished = Callable[[list[str], float], dict[str, float]]  # delivery ids, timeout → finish time by delivery


def _low_load(
    url: str, finished: Finished, rate_per_s: float, duration: float
) -> tuple[dict[str, float], dict[str, float]]:
    sent = accepted_sends(loadgen(url, "open", rate=rate_per_s, duration=duration))
    done = finished(list(sent), 120.0)
    latencies = [done[d] - sent[d] for d in sent]
    return latency_summary(latencies), sent


def _burst(url: str, finished: Finished, count: int, concurrency: int) -> dict[str, float]:
    answer = loadgen(url, "count", count=count, concurrency=concurrency)
    sent = accepted_sends(answer)
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
        hamster.stop()
    return result


def celery_e2e(procs: Processes, home: Path, opts: dict[str, Any]) -> dict[str, Any]:
    celery = Celery(procs, home)
    try:
        celery.start_worker(opts["celery_concurrency"])
        celery.start_web()
        result, _ = _measure(celery.url, celery.finished, {**opts, "label": "celery"})
    finally:
        celery.stop()
    return result
