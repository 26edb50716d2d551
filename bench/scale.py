"""Section 5, flat at scale: a worker, the dashboard, `hamster runs list` and `hamster audit verify` with
100,000 runs of history, against the same with 1,000.

Each size gets a namespace whose run log holds that many complete 3-stage runs (sealed), with what a
running system would have next to it: the run-marks a worker writes (every run ended before the log's end),
the consumer group's offsets committed at the end (the projection and reporting agents had read it all),
and the projection rebuilt from it into sqlite (the workers' default) and, for the large size, PostgreSQL.
Not simulated: the deliveries and reported-status tables' changelogs (one entry per run in a real system).

Measured: a worker's start-up (process start → it holds the subscribers table and its run view is ready,
the "stage worker:" line) and its RSS 5 s later, medians of 3 starts per size, sizes alternating;
GET /api/runs and GET /runs (first page, 100 runs) p95 over real HTTP against `hamster web`, and a page
20 pages deep by cursor; `hamster runs list` wall clock (median of 3); and `hamster audit verify`
records/s over the large log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from bench.harness import PYTHON, Processes, free_port, http_json, http_status, wait_until
from bench.history import RECORDS_PER_RUN, fresh_namespace, hamster, produce_all, run_log
from bench.payloads import SECRET
from bench.stats import median, percentile, rate
from hamster.settings import Settings
from streams.topics import run_events_topic, run_marks_topic

if TYPE_CHECKING:  # the contract tests' throwaway server, imported only where a section needs it
    from tests.postgres import LocalPostgres

log = logging.getLogger("bench.scale")

REQUESTS = 60  # per URL, for the p95
WORKER_TRIALS = 3  # worker starts per size; the median is kept


def _settle_log(settings: Settings) -> None:
    """What a running system has beside its run log: marks at its end, the group's offsets there."""
    topic = run_events_topic(settings)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.namespace)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(tps)
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
    finally:
        consumer.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for tp in tps:
            producer.send(
                run_marks_topic(settings), key=str(tp.partition).encode(), value=str(ends[tp]).encode()
            )
        producer.flush()
    finally:
        producer.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _worker(procs: Processes, env: dict[str, str], name: str, db_url: str) -> dict[str, float]:
    port = free_port()
    t0 = time.perf_counter()
    proc = procs.spawn(
        name,
        [PYTHON, "-m", "hamster.cli", "worker", "--web-port", str(port)],
        {**env, "HAMSTER_SUBSCRIBERS": "bench.pipeline", "HAMSTER_DATABASE_URL": db_url,
         "HAMSTER_LOG_LEVEL": "INFO"},
    )  # fmt: skip

    def ready() -> bool:
        procs.check(name)
        view = http_json(f"http://127.0.0.1:{port}/hamster/subscribers/")
        return bool(view) and "bench-noop" in view and "stage worker:" in procs.log_tail(name, 400)

    wait_until(ready, 600, f"{name} to be ready", every=0.2)
    start_s = time.perf_counter() - t0
    at_ready = _rss_mb(proc.pid)
    time.sleep(5.0)  # what it settles at, its agents idle
    settled = _rss_mb(proc.pid)
    procs.stop(name)
    return {"start_s": start_s, "rss_mb_at_ready": at_ready, "rss_mb": settled}


TOKEN = "bench-scale-read-token-0123456789abcdef"
"""HAMSTER_API_TOKEN of the bench's `hamster web`: every request logs in with it, as a script would."""


def _get(url: str) -> Any:
    return urllib.request.urlopen(
        urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"}), timeout=30
    )


def _latencies(url: str) -> list[float]:
    out = []
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        with _get(url) as answer:
            answer.read()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _deep_url(base: str, pages: int) -> str:
    """The URL of the page ``pages`` pages deep, followed through the Link headers."""
    url = f"{base}/api/runs"
    for _ in range(pages):
        with _get(url) as answer:
            link = answer.headers.get("Link") or ""
        url = base + link[1 : link.index(">")]
    return url


def _web(procs: Processes, env: dict[str, str], name: str, db_url: str) -> dict[str, float]:
    port = free_port()
    procs.spawn(
        name,
        [PYTHON, "-m", "hamster.cli", "web", "--port", str(port)],
        {
            **env,
            "HAMSTER_DATABASE_URL": db_url,
            "HAMSTER_WEBHOOK_SECRET": SECRET,
            "HAMSTER_API_TOKEN": TOKEN,
            "HAMSTER_LOG_LEVEL": "WARNING",
        },
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        procs.check(name)
        return http_status(f"{base}/readyz") == 200

    wait_until(ready, 120, f"{name} to be ready")
    try:
        api = _latencies(f"{base}/api/runs")
        page = _latencies(f"{base}/runs")
        deep = _latencies(_deep_url(base, 20))
    finally:
        procs.stop(name)
    return {
        "api_runs_p95_ms": percentile(api, 95),
        "api_runs_p50_ms": percentile(api, 50),
        "runs_page_p95_ms": percentile(page, 95),
        "runs_page_p50_ms": percentile(page, 50),
        "api_runs_page_20_p95_ms": percentile(deep, 95),
    }


def _runs_list_s(env: dict[str, str], db_url: str) -> float:
    return median(
        hamster({**env, "HAMSTER_DATABASE_URL": db_url}, "runs", "list", timeout=120, json_out=False)[0]
        for _ in range(3)
    )


def run(
    procs: Processes,
    bootstrap: str,
    home: Path,
    *,
    partitions: int,
    small: int,
    large: int,
    postgres: LocalPostgres,
) -> dict[str, Any]:
    sizes: dict[int, tuple[Settings, dict[str, str], str]] = {}
    out: dict[str, Any] = {"runs_small": small, "runs_large": large}
    for runs in (small, large):
        settings, env = fresh_namespace(bootstrap, home, partitions)
        t0 = time.perf_counter()
        asyncio.run(produce_all(bootstrap, run_events_topic(settings), run_log(runs)))
        _settle_log(settings)
        log.info("%d runs written to %s in %.0f s", runs, settings.namespace, time.perf_counter() - t0)
        sqlite = f"sqlite:///{home / settings.namespace / 'hamster.db'}"
        seconds, summary = hamster(env, "projection", "rebuild", "--into", sqlite, timeout=3600)
        log.info("projection of %d runs rebuilt into sqlite in %.0f s", runs, seconds)
        if runs == large:
            out["rebuild_records_per_s_sqlite"] = rate(summary["records"], seconds)
        sizes[runs] = (settings, env, sqlite)
    settings, env, sqlite = sizes[large]
    pg = postgres.create_database(settings.namespace)
    seconds, summary = hamster(env, "projection", "rebuild", "--into", pg, timeout=3600)
    out["rebuild_records_per_s_postgres"] = rate(summary["records"], seconds)
    log.info("projection of %d runs rebuilt into PostgreSQL in %.0f s", large, seconds)

    verify_s, verdict = hamster(env, "audit", "verify", timeout=3600)
    out["audit_records_per_s"] = rate(int(verdict["records"]), verify_s)
    out["audit_records"] = verdict["records"]
    out["audit_ok"] = verdict["ok"]
    log.info("audit verify: %d records in %.1f s", verdict["records"], verify_s)

    for kind, url in (("sqlite", sqlite), ("postgres", pg)):
        out[f"runs_list_s_{kind}"] = _runs_list_s(env, url)
        for key, value in _web(procs, env, f"{settings.namespace}-web-{kind}", url).items():
            out[f"{key}_{kind}"] = value
        log.info("%s: runs list %.2f s, /api/runs p95 %.1f ms", kind, out[f"runs_list_s_{kind}"],
                 out[f"api_runs_p95_ms_{kind}"])  # fmt: skip

    trials: dict[str, list[dict[str, float]]] = {"small": [], "large": []}
    for trial in range(WORKER_TRIALS):  # sizes alternate, so a busy spell hits both alike
        for runs, label in ((small, "small"), (large, "large")):
            settings, env, sqlite = sizes[runs]
            trials[label].append(_worker(procs, env, f"{settings.namespace}-worker-{trial}", sqlite))
    for label, found in trials.items():
        for key in found[0]:
            out[f"worker_{key}_{label}"] = median(t[key] for t in found)
        worker = {key: out[f"worker_{key}_{label}"] for key in found[0]}
        runs = small if label == "small" else large
        log.info(
            "worker with %d runs: ready in %.1f s, RSS %.0f MB", runs, worker["start_s"], worker["rss_mb"]
        )
    out["worker_rss_ratio"] = out["worker_rss_mb_large"] / out["worker_rss_mb_small"]
    out["worker_start_ratio"] = out["worker_start_s_large"] / out["worker_start_s_small"]
    out["records_large"] = large * RECORDS_PER_RUN
    out["method"] = __doc__
    return out
