"""Section 1, intake: Hamster's webhook intake against the HTTP limit and the Kafka limit, same run.

Closed loop at several concurrency levels (requests/s, p50/p99) for three targets, trials interleaved so
background load hits them alike; then an open-loop rate sweep on the intake, at fractions of its best rate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.harness import PYTHON, Hamster, Processes, free_port, http_status, loadgen, run_json, wait_until
from bench.payloads import SECRET
from bench.stats import latency_summary, median_of_trials, rate
from hamster.settings import load_settings
from streams.admin import ensure_topics
from streams.topics import topic_specs

log = logging.getLogger("bench.intake")


def _http_trial(url: str, concurrency: int, duration: float) -> dict[str, float]:
    answer = loadgen(url, "closed", concurrency=concurrency, duration=duration)
    samples = answer["samples"]
    ok = [s[2] for s in samples if 200 <= s[3] < 300]
    return {
        "rps": rate(len(ok), answer["elapsed_s"]),
        "errors": len(samples) - len(ok),
        **latency_summary(ok),
    }


def _kafka_trial(
    bootstrap: str, topic: str, concurrency: int, duration: float, linger_ms: int = 0
) -> dict[str, float]:
    argv = [PYTHON, "-m", "bench.kafka_limit", bootstrap, topic, "--concurrency", str(concurrency)]
    argv += ["--duration", str(duration), "--linger-ms", str(linger_ms)]
    answer = run_json(argv, timeout=duration + 120)
    latencies = answer["latencies"]
    return {"rps": rate(len(latencies), answer["elapsed_s"]), "errors": 0, **latency_summary(latencies)}


def _open_trial(url: str, target_rps: float, duration: float) -> dict[str, float]:
    answer = loadgen(url, "open", rate=round(target_rps, 1), duration=duration)
    samples = answer["samples"]
    ok = [s[2] for s in samples if 200 <= s[3] < 300]
    return {
        "offered_rps": target_rps,
        "rps": rate(len(ok), answer["elapsed_s"]),
        "errors": len(samples) - len(ok),
        **latency_summary(ok),
    }


def run(
    procs: Processes,
    bootstrap: str,
    home: Path,
    *,
    partitions: int,
    levels: list[int],
    trials: int,
    duration: float,
    sweep: list[float],
) -> dict[str, Any]:
    hamster = Hamster(procs, bootstrap, home, partitions)
    hamster.start_intake()
    limit_port = free_port()
    procs.spawn(
        "http-limit",
        [PYTHON, "-m", "bench.servers", "http-limit", "--port", str(limit_port), "--secret", SECRET,
         "--log", str(home / "http-limit.requests.log")],
    )  # fmt: skip
    limit_url = f"http://127.0.0.1:{limit_port}/webhooks/github"

    def limit_up() -> bool:
        procs.check("http-limit")
        return http_status(f"http://127.0.0.1:{limit_port}/healthz") == 200

    wait_until(limit_up, 60, "the HTTP-limit server")
    # The Kafka limit writes to a topic of its own, created exactly like the intake's events topic.
    kafka_settings = load_settings(
        kafka_bootstrap=bootstrap, namespace=hamster.namespace + "k", partitions=partitions
    )
    kafka_topic = topic_specs(kafka_settings)[0]
    ensure_topics(kafka_settings.kafka, [kafka_topic])

    # Warm-up: connections, the producer's metadata, the first JIT-less slow paths of every server.
    for url in (hamster.url, limit_url):
        _http_trial(url, 4, 1.0)
    _kafka_trial(bootstrap, kafka_topic.name, 4, 1.0)

    closed: dict[str, dict[str, Any]] = {"intake": {}, "http_limit": {}, "kafka_limit": {}}
    for concurrency in levels:
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in closed}
        for trial in range(trials):
            runs["intake"].append(_http_trial(hamster.url, concurrency, duration))
            runs["http_limit"].append(_http_trial(limit_url, concurrency, duration))
            runs["kafka_limit"].append(_kafka_trial(bootstrap, kafka_topic.name, concurrency, duration))
            log.info(
                "intake c=%d trial %d: intake %.0f/s, http limit %.0f/s, kafka limit %.0f/s",
                concurrency,
                trial + 1,
                runs["intake"][-1]["rps"],
                runs["http_limit"][-1]["rps"],
                runs["kafka_limit"][-1]["rps"],
            )
        for key in closed:
            closed[key][str(concurrency)] = median_of_trials(runs[key])

    best = max(levels, key=lambda c: closed["intake"][str(c)]["rps"])
    max_rps = closed["intake"][str(best)]["rps"]
    open_loop = []
    for fraction in sweep:
        trials_at = [_open_trial(hamster.url, max_rps * fraction, duration) for _ in range(trials)]
        point = {"fraction_of_max": fraction, **median_of_trials(trials_at)}
        log.info("intake open loop at %.0f/s: p50 %.1f ms p99 %.1f ms", point["offered_rps"],
                 point["p50_ms"], point["p99_ms"])  # fmt: skip
        open_loop.append(point)

    # Tuning probe: would producer batching (linger) raise the Kafka limit at the best concurrency?
    lingered = median_of_trials(
        [_kafka_trial(bootstrap, kafka_topic.name, best, duration, linger_ms=5) for _ in range(trials)]
    )
    half = min(open_loop, key=lambda p: abs(p["fraction_of_max"] - 0.5))
    procs.stop("http-limit")
    procs.stop(f"{hamster.namespace}-web")
    return {
        "rps": max_rps,
        "best_concurrency": best,
        "p50_ms": half["p50_ms"],
        "p99_ms": half["p99_ms"],
        "p_at_rps": half["offered_rps"],
        "http_limit_rps": closed["http_limit"][str(best)]["rps"],
        "kafka_limit_rps": closed["kafka_limit"][str(best)]["rps"],
        "kafka_limit_linger5_rps": lingered["rps"],
        "closed_loop": closed,
        "open_loop": open_loop,
    }
