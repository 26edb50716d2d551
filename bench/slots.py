"""Section ``slots``: how stages spread over workers' slots, on the real broker and real processes.

Each part runs ``hamster web`` and ``hamster worker`` processes in a namespace of its own, running
``bench.pipeline_slow``; every figure is read back from the run log (``bench.executions``).

- **Long stages**: 8 webhooks on 8 repositories, one blocking stage of 8 s each, 2 workers of 2 slots, and a
  third worker (2 slots) started 3 s after the first webhook. Makespan (first webhook sent → last
  ``RunSucceeded``) against the ideal ``ceil(8 / 4) * 8 s``; the most stages running at once against the
  slots of the workers ready before the last claim; stages executed twice. The same 8 tasks on Celery: 2
  workers of 2 prefork processes with ``-O fair``.
- **Takeover**: one run whose stage blocks (attempt 1) on 2 workers with a 10 s lease; SIGKILL the worker
  that claimed it (the ``worker`` field of its ``StageStarted``); seconds from the kill to the
  ``StageStarted`` of attempt 2.
- **Rebalance**: 2 workers with every slot busy on 30 s stages; start a third and send more runs; seconds
  from its process start to its first ``StageStarted``, and how long the consumer group took to settle.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.executions import (
    Execution,
    executions,
    ideal_makespan_s,
    lease_end,
    most_at_once,
    ran_twice,
    slots_available,
    worker_pid,
)
from bench.harness import Celery, Hamster, Processes, accepted_sends, loadgen, wait_until
from bench.runlog import RunLog
from bench.stats import ratio
from hamster import ids
from hamster.settings import load_settings
from streams.topics import run_events_topic

log = logging.getLogger("bench.slots")

# bench/pipeline_slow.py's subscribers, of the repositories slow/* and stall/*.
SLOW, STALL = "bench-slow", "bench-stall"
SLOTS_READY = "stage worker: "  # agents.stages logs it once the worker's slots take work


def plan(quick: bool) -> dict[str, Any]:
    """What the section runs; ``quick`` keeps every step, with shorter stages."""
    return {
        "runs": 8,
        "slots": 2,
        "stage_s": 3.0 if quick else 8.0,
        "join_after_s": 1.0 if quick else 3.0,
        "lease_s": 5.0 if quick else 10.0,
        "stall_s": 120.0,
        "rebalance_stage_s": 20.0 if quick else 30.0,
        "rebalance_runs": 2,
    }


def run(
    procs: Processes, bootstrap: str, home: Path, partitions: int, opts: dict[str, Any]
) -> dict[str, Any]:
    long = long_stages(procs, bootstrap, home, partitions, opts)
    celery = celery_long_tasks(procs, home, opts)
    taken = takeover(procs, bootstrap, home, partitions, opts)
    joined = rebalance(procs, bootstrap, home, partitions, opts)
    return {
        "makespan_x_ideal": long["makespan_x_ideal"],
        "peak": long["peak"],
        "slots_total": long["slots_total"],
        "twice": long["twice"],
        "celery_makespan_x_ideal": celery["makespan_x_ideal"],
        "celery_peak": celery["peak"],
        "takeover_s": taken["takeover_s"],
        "lease_s": taken["lease_s"],
        "join_to_first_stage_s": joined["join_to_first_stage_s"],
        "rebalance_s": joined["rebalance_s"],
        "long_stages": long,
        "celery": celery,
        "takeover": taken,
        "rebalance": joined,
    }


# The parts
def long_stages(
    procs: Processes, bootstrap: str, home: Path, partitions: int, opts: dict[str, Any]
) -> dict[str, Any]:
    slots, stage_s = opts["slots"], opts["stage_s"]
    hamster = _hamster(procs, bootstrap, home, partitions, slots, {"BENCH_STAGE_S": str(stage_s)})
    runlog = _runlog(bootstrap, hamster)
    try:
        sent = _send(hamster.url, "slow", opts["runs"])
        first_sent = min(sent.values())
        time.sleep(max(0.0, first_sent + opts["join_after_s"] - time.time()))
        joined_at = time.time()
        third = hamster.spawn_worker()
        log.info("slots: %d webhooks sent, third worker started %.1f s after the first", len(sent),
                 joined_at - first_sent)  # fmt: skip
        by_run = {ids.run_id(d, SLOW): d for d in sent}
        done = runlog.wait_finished(list(by_run), 60 + 4 * opts["runs"] * stage_s)
        hamster.wait_worker(third, expect=SLOW)
        _wait_slots(procs, third)  # to know whether its slots could have taken any of the stages
        found = [e for run_id in by_run for e in executions(runlog.records[run_id])]
        ready = [logged_at(_log(procs, name), SLOTS_READY) for name in hamster.workers]
    finally:
        runlog.close()
        hamster.stop()
    ideal = ideal_makespan_s(opts["runs"], 2 * slots, stage_s)
    makespan = max(done.values()) - first_sent
    third_ready = ready[-1]
    result = {
        "runs": len(done),
        "stage_s": stage_s,
        "makespan_s": makespan,
        "ideal_s": ideal,
        "makespan_x_ideal": ratio(makespan, ideal),
        # Where the makespan beyond the stages went: to the first claim, and from the last stage's end.
        "to_first_claim_s": min(e.start for e in found) - first_sent,
        "last_stage_to_run_end_s": max(done.values()) - max(e.end or 0.0 for e in found),
        "peak": _peak(found),
        "slots_total": slots_available(slots, ready, max(e.start for e in found)),
        "slots_all_workers": slots * len(hamster.workers),
        "twice": ran_twice(found),
        "third_worker_ready_s": None if third_ready is None else third_ready - joined_at,
        "stages_by_worker": _by_worker(found),
    }
    log.info("slots, long stages: %s", {k: v for k, v in result.items() if k != "stages_by_worker"})
    return result


def celery_long_tasks(procs: Processes, home: Path, opts: dict[str, Any]) -> dict[str, Any]:
    slots, stage_s = opts["slots"], opts["stage_s"]
    celery = Celery(procs, home)
    try:
        names = [
            celery.start_worker(slots, ["-O", "fair"], {"BENCH_STAGE_S": str(stage_s)}, "INFO")
            for _ in range(2)
        ]
        for name in names:
            celery.wait_worker(name)
        celery.start_web("slow")
        sent = _send(celery.url, "slow", opts["runs"])
        done = celery.finished(list(sent), 60 + 4 * opts["runs"] * stage_s)
        spans = celery.spans(list(sent))
    finally:
        celery.stop()
    ideal = ideal_makespan_s(opts["runs"], 2 * slots, stage_s)
    makespan = max(done.values()) - min(sent.values())
    result = {
        "runs": len(done),
        "stage_s": stage_s,
        "workers": 2,
        "concurrency": slots,
        "options": "-O fair, prefetch multiplier 4 (the default)",
        "makespan_s": makespan,
        "ideal_s": ideal,
        "makespan_x_ideal": ratio(makespan, ideal),
        "peak": most_at_once(spans),
    }
    log.info("slots, Celery: %s", result)
    return result


def takeover(
    procs: Processes, bootstrap: str, home: Path, partitions: int, opts: dict[str, Any]
) -> dict[str, Any]:
    lease_s = opts["lease_s"]
    env = {"HAMSTER_STAGE_LEASE_S": str(lease_s), "BENCH_STALL_S": str(opts["stall_s"])}
    hamster = _hamster(procs, bootstrap, home, partitions, opts["slots"], env)
    runlog = _runlog(bootstrap, hamster)
    try:
        [delivery] = _send(hamster.url, "stall", 1)
        run_id = ids.run_id(delivery, STALL)
        first = wait_until(lambda: _claimed(runlog, run_id, 1), 60, "attempt 1 to start")
        victim = hamster.worker_named(worker_pid(first.worker))
        if victim is None:
            raise RuntimeError(f"no worker of this run has the pid in {first.worker!r}")
        procs.kill(victim)
        killed_at = time.time()
        second = wait_until(lambda: _claimed(runlog, run_id, 2), lease_s + 60, "attempt 2 to start")
        runlog.wait_finished([run_id], 60)
        records = runlog.records[run_id]
    finally:
        runlog.close()
        hamster.stop()
    ran_out = lease_end(records, 0, 1)
    result = {
        "lease_s": lease_s,
        "takeover_s": second.start - killed_at,
        "lease_left_at_kill_s": None if ran_out is None else ran_out - killed_at,
        "after_lease_s": None if ran_out is None else second.start - ran_out,
        "same_worker": first.worker == second.worker,
    }
    log.info("slots, takeover: %s", result)
    return result


def rebalance(
    procs: Processes, bootstrap: str, home: Path, partitions: int, opts: dict[str, Any]
) -> dict[str, Any]:
    slots, stage_s = opts["slots"], opts["rebalance_stage_s"]
    hamster = _hamster(procs, bootstrap, home, partitions, slots, {"BENCH_STAGE_S": str(stage_s)})
    runlog = _runlog(bootstrap, hamster)
    try:
        busy = _send(hamster.url, "slow", 2 * slots)
        runs = [ids.run_id(d, SLOW) for d in busy]
        wait_until(lambda: len(_all_claims(runlog, runs)) == len(runs), 60, "every slot to be busy")
        joined_at = time.time()
        third = hamster.spawn_worker()
        more = _send(hamster.url, "slow", opts["rebalance_runs"])
        runs += [ids.run_id(d, SLOW) for d in more]
        pid = hamster.procs.procs[third].pid

        def third_claimed() -> Execution | None:
            return next((e for e in _all_claims(runlog, runs) if worker_pid(e.worker) == pid), None)

        claimed = wait_until(third_claimed, stage_s + 120, "the third worker's first stage")
        done = runlog.wait_finished(runs, 60 + 3 * stage_s)
        found = [e for run_id in runs for e in executions(runlog.records[run_id])]
        logs = {name: _log(procs, name) for name in hamster.workers}
    finally:
        runlog.close()
        hamster.stop()
    ready = logged_at(logs[third], SLOTS_READY)
    incumbents = [rebalance_seconds(text, joined_at) for name, text in logs.items() if name != third]
    result = {
        "stage_s": stage_s,
        "runs": len(done),
        "join_to_first_stage_s": claimed.start - joined_at,
        "join_to_slots_ready_s": None if ready is None else ready - joined_at,
        "rebalance_s": rebalance_seconds(logs[third]),
        "incumbents_rebalance_s": max((s for s in incumbents if s is not None), default=None),
        "twice": ran_twice(found),
        "stages_by_worker": _by_worker(found),
    }
    log.info("slots, rebalance: %s", result)
    return result


# Reading logs (JSON lines: HAMSTER_LOG_FORMAT=json)
JOINING = ("(Re-)joining group", "Revoking previously assigned partitions")  # aiokafka's group coordinator
ASSIGNED = "Setting newly assigned partitions"


def _entries(text: str) -> list[tuple[float, str]]:
    """(epoch s, message) of each JSON log line; anything else (a banner, a traceback) is skipped."""
    out = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
            out.append((datetime.fromisoformat(entry["time"]).timestamp(), str(entry["message"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def logged_at(text: str, prefix: str) -> float | None:
    """When the first JSON log line whose message starts with ``prefix`` was logged (epoch s)."""
    return next((t for t, message in _entries(text) if message.startswith(prefix)), None)


def rebalance_seconds(text: str, after: float = 0.0) -> float | None:
    """How long the worker's first consumer-group rebalance at or after ``after`` took, from its log: from
    leaving its partitions (or joining the group) to being assigned its new ones."""
    began = None
    for t, message in _entries(text):
        if t < after:
            continue
        if began is None and message.startswith(JOINING):
            began = t
        elif began is not None and message.startswith(ASSIGNED):
            return t - began
    return None


def _log(procs: Processes, name: str) -> str:
    path = procs.home / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


# Plumbing
def _hamster(
    procs: Processes, bootstrap: str, home: Path, partitions: int, slots: int, env: dict[str, str]
) -> Hamster:
    hamster = Hamster(procs, bootstrap, home, partitions, "bench.pipeline_slow")
    hamster.env.update(
        HAMSTER_WORKER_SLOTS=str(slots),
        HAMSTER_LOG_FORMAT="json",  # the section reads when things happened from the workers' logs
        HAMSTER_SHUTDOWN_GRACE_S="2",  # nothing is left to finish when a part ends
        **env,
    )
    hamster.start_intake()
    for _ in range(2):
        _wait_slots(procs, hamster.start_worker(expect=SLOW))
    return hamster


def _wait_slots(procs: Processes, name: str) -> None:
    wait_until(lambda: logged_at(_log(procs, name), SLOTS_READY), 60, f"{name}'s slots to take work")


def _runlog(bootstrap: str, hamster: Hamster) -> RunLog:
    return RunLog(bootstrap, run_events_topic(load_settings(namespace=hamster.namespace)))


def _send(url: str, owner: str, count: int) -> dict[str, float]:
    """``count`` webhooks at once, on repositories ``<owner>/repo-0`` … ; delivery id → send time."""
    sent = accepted_sends(loadgen(url, "count", count=count, concurrency=count, owner=owner))
    if len(sent) != count:
        raise RuntimeError(f"{count - len(sent)} of {count} webhooks refused by {url}")
    return sent


def _claimed(runlog: RunLog, run_id: str, attempt: int) -> Execution | None:
    runlog.drain()
    return next((e for e in executions(runlog.records[run_id]) if e.attempt == attempt), None)


def _all_claims(runlog: RunLog, run_ids: list[str]) -> list[Execution]:
    runlog.drain()
    return [e for run_id in run_ids for e in executions(runlog.records[run_id])]


def _peak(found: list[Execution]) -> int:
    return most_at_once([(e.start, e.end) for e in found if e.end is not None])


def _by_worker(found: list[Execution]) -> dict[str, int]:
    return dict(Counter(e.worker for e in found))
