"""`make faults`: 1,000 webhooks through two workers while one worker is killed and the broker restarted.

Everything is real: a Kafka broker of its own (port ``$HAMSTER_FAULTS_KAFKA_PORT``, default 29892, in a temp
home), the `hamster web` intake and two `hamster worker` processes. A sender plays GitHub and redelivers
every webhook not answered 202. Faults: when 40 % of the webhooks are acknowledged the broker is stopped and
started again (mid-stream); when 25 % of the runs finished worker-1 gets SIGKILL (mid-work); at 60 % it is
started again. Then it waits for every run to finish and checks runs requested = runs finished = webhooks,
none lost, none duplicated, no stage executed twice.

    python -m faults.soak [--webhooks 1000] [--timeout 900]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hamster.broker import LocalBroker
from hamster.errors import InvalidTransition
from hamster.lifecycle import evolve
from hamster.settings import load_settings
from tests.integration.fault_tools import GitHub, delivery_counts, run_log
from tests.integration.stage_tools import spans
from tests.integration.system import System, wait_until

FINAL = {"succeeded", "failed", "cancelled"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every run")
    args = parser.parse_args()
    # Stopped from outside (a CI timeout, kill): still stop the broker, the intake and the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = int(os.environ.get("HAMSTER_FAULTS_KAFKA_PORT", "29892"))
    bootstrap = f"127.0.0.1:{port}"
    home = Path(tempfile.mkdtemp(prefix="hamster-faults-"))
    broker = LocalBroker(load_settings(kafka_bootstrap=bootstrap, home=home / "kafka-home"))
    system = System(bootstrap, home, "tests.pipelines.faults")
    system.env["HAMSTER_STAGE_LEASE_S"] = "10"  # the killed worker's stages are taken over after this
    started = time.monotonic()
    try:
        say(f"broker on {bootstrap}, files in {home}")
        broker.start(timeout_s=180.0)
        system.start_intake()
        system.start_worker("worker-1")
        system.start_worker("worker-2")
        system.wait_workers_ready({"steady"}, timeout=180)
        github = GitHub(system, args.webhooks, "soak", repos=20)
        github.start()
        n = args.webhooks
        wait_until(lambda: len(github.acknowledged) >= 2 * n // 5 or github.error, 900, 0.5, "40 % sent")
        say(f"{len(github.acknowledged)} acknowledged: stopping the broker")
        broker.stop()
        time.sleep(3)  # an outage long enough for the intake to answer 503 in between
        broker.start(timeout_s=180.0)
        say(f"broker back; {github.answers[503]} answers 503 so far")
        # The worker is killed in the middle of steady work (see docs/reliability.md for a worker killed
        # within seconds of a rebalance, before its first commit).
        wait_until(lambda: finished_count(system) >= n // 4, 900, 1.0, "25 % of the runs finished")
        say(f"{finished_count(system)} runs finished: SIGKILL worker-1")
        system.kill("worker-1")
        wait_until(lambda: finished_count(system) >= 3 * n // 5, 900, 1.0, "60 % of the runs finished")
        say(f"{finished_count(system)} runs finished: starting worker-1 again")
        system.start_worker("worker-1")
        github.join(900)
        if github.error is not None or github.is_alive():
            raise AssertionError(f"the sender did not finish: {github.error}")
        wanted = set(github.deliveries)

        def finished() -> list[dict[str, object]] | None:
            runs = [r for r in system.runs(subscriber="steady") if r["delivery_id"] in wanted]
            done = [r for r in runs if r["status"] in FINAL]
            return runs if len(done) >= len(wanted) else None

        try:
            runs = wait_until(finished, args.timeout, 2.0, "every run to finish")
        except AssertionError:
            runs = [r for r in system.runs(subscriber="steady") if r["delivery_id"] in wanted]
        return report(system, github, runs, time.monotonic() - started)
    finally:
        system.stop()
        broker.stop()


def finished_count(system: System) -> int:
    return sum(1 for r in system.runs(subscriber="steady") if r["status"] in FINAL)


def report(system: System, github: GitHub, runs: list[dict[str, object]], elapsed: float) -> int:
    log = run_log(system)
    requested = {r.run_id for r in log if r.type == "RunRequested"}
    ended = {r.run_id for r in log if r.type in {"RunSucceeded", "RunFailed", "RunCancelled"}}
    per_delivery = Counter(str(r["delivery_id"]) for r in runs)
    finished = [r for r in runs if r["status"] in FINAL]
    lost = [
        d for d in github.deliveries if per_delivery[d] == 0 or d not in {r["delivery_id"] for r in finished}
    ]
    duplicated = [d for d, count in per_delivery.items() if count > 1]
    events = delivery_counts(system)
    # Every worker folds the log the same way: a record the state machine refuses (a claim that lost to
    # another worker's, a record of an attempt no longer current) changes nothing; count them apart.
    accepted, refused = fold_log(log)
    # One record per step of a run: the same step accepted twice would mean a record written twice.
    rewritten = sum(c - 1 for c in Counter(r.event_id for r in accepted).values() if c > 1)
    marks = Counter((r, s) for r, s, _ in system.marks_list())
    ran = spans(system)
    ends = Counter((s.run_id, s.stage) for s in ran)
    # A stage that ran to its end twice: a bug if its earlier attempt's outcome was in the log (it was run
    # again although it was done); at-least-once if that attempt's worker was killed before it could record
    # the outcome (the work finished, the record never came: another worker must run it again).
    recorded = {
        (r.run_id, r.stage, r.attempt) for r in accepted if r.type in {"StageSucceeded", "StageFailed"}
    }
    again_after_recorded = again_unrecorded = 0
    for run_id, stage in (key for key, count in ends.items() if count > 1):
        first = min(s.attempt for s in ran if (s.run_id, s.stage) == (run_id, stage))
        if (run_id, stage, first) in recorded:
            again_after_recorded += 1
        else:
            again_unrecorded += 1
    overlapping = sum(
        1
        for a, b in itertools.combinations(ran, 2)
        if (a.run_id, a.stage) == (b.run_id, b.stage) and a.start < b.end and b.start < a.end
    )
    attempts = Counter(a for _, _, a in system.marks_list())
    figures = {
        "webhooks sent": len(github.deliveries),
        "answered 202": len(github.acknowledged),
        "answered 503 (then redelivered)": github.answers[503],
        "connection refused (then redelivered)": github.answers[0],
        "events records": sum(events.values()),
        "events records beyond the first per delivery": sum(c - 1 for c in events.values() if c > 1),
        "runs requested (RunRequested in the run log)": len(requested),
        "runs finished (run log)": len(ended),
        "runs finished (projection)": len(finished),
        "runs succeeded": sum(1 for r in finished if r["status"] == "succeeded"),
        "lost (delivery without a finished run)": len(lost),
        "duplicated (delivery with more than one run)": len(duplicated),
        "run-log records written twice (same step)": rewritten,
        "run-log records refused (lost claims, stale attempts)": len(refused),
        "stage executions": sum(marks.values()),
        "stages run again after their outcome was recorded": again_after_recorded,
        "stages run again: the killed worker finished them, never recorded it": again_unrecorded,
        "attempts of one stage executing at the same time": overlapping,
        "stage attempts beyond the first": sum(c for a, c in attempts.items() if a > 1),
        "seconds": round(elapsed, 1),
    }
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")
    ok = (
        len(requested) == len(ended) == len(finished) == len(github.deliveries)
        and not lost
        and not duplicated
        and not rewritten
        and not again_after_recorded
        and not overlapping
    )
    print("faults: PASS" if ok else f"faults: FAIL (lost: {lost[:5]}, duplicated: {duplicated[:5]})")
    return 0 if ok else 1


def fold_log(log: list[Any]) -> tuple[list[Any], list[Any]]:
    """(the records the state machine accepts, those it refuses), folding each run as every worker does."""
    states: dict[str, Any] = {}
    accepted, refused = [], []
    for record in log:
        try:
            states[record.run_id] = evolve(states.get(record.run_id), record)
        except InvalidTransition:
            refused.append(record)
            continue
        if record.type != "LeaseRenewed":
            accepted.append(record)
    return accepted, refused


def say(message: str) -> None:
    print(f"[faults] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
