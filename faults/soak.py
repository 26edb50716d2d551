"""`make faults`: 1,000 webhooks through two workers while Kafka and the workers fail under them.

Everything is real: Kafka of its own (port ``$HAMSTER_FAULTS_KAFKA_PORT``, default 29892, in a temp home),
the `hamster web` intake and two `hamster worker` processes. A sender plays GitHub and redelivers every
webhook not answered 202. Then it waits for every run to finish and checks runs requested = runs finished =
webhooks, none lost, none duplicated, no stage executed twice. Two scenarios:

- one broker (the default): when 40 % of the webhooks are acknowledged the broker is stopped and started
  again (mid-stream); when 25 % of the runs finished worker-1 gets SIGKILL (mid-work); at 60 % it is
  started again.
- ``--brokers 3``: a three-node cluster (topics with 3 replicas, min.insync.replicas 2). When 40 % of the
  webhooks are acknowledged the node leading most of the run's partitions gets SIGKILL; it stays down until
  70 % are acknowledged (and at least 20 s, past the controller's fencing of it), then starts again. The
  webhooks answered 202 while it was down are counted: the cluster must go on taking them.

    python -m faults.soak [--brokers 1|3] [--webhooks 1000] [--timeout 900]
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

from kafka.admin import KafkaAdminClient

from hamster.broker import LocalBroker
from hamster.errors import InvalidTransition
from hamster.runs.lifecycle import evolve
from hamster.settings import load_settings
from streams.kafka_python import connect
from tests.integration.fault_tools import GitHub, delivery_counts, run_log
from tests.integration.stage_tools import spans
from tests.integration.system import System, wait_until

FINAL = {"succeeded", "failed", "cancelled"}
MIN_DOWN_S = 20.0  # longer than Kafka's broker.session.timeout.ms (9 s): the cluster fences the dead node


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1, help="one broker, or a cluster")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every run")
    args = parser.parse_args()
    # Stopped from outside (a CI timeout, kill): still stop the broker, the intake and the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = int(os.environ.get("HAMSTER_FAULTS_KAFKA_PORT", "29892"))
    home = Path(tempfile.mkdtemp(prefix="hamster-faults-"))
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{port}", home=home / "kafka-home")
    broker = LocalBroker(settings, nodes=args.brokers)
    system = System(broker.bootstrap, home, "tests.pipelines.faults")
    system.env["HAMSTER_STAGE_LEASE_S"] = "10"  # the killed worker's stages are taken over after this
    started = time.monotonic()
    try:
        say(f"{args.brokers} broker(s) on {broker.bootstrap}, files in {home}")
        broker.start(timeout_s=180.0)
        system.start_intake()
        system.start_worker("worker-1")
        system.start_worker("worker-2")
        system.wait_workers_ready({"steady"}, timeout=180)
        github = GitHub(system, args.webhooks, "soak", repos=20)
        github.start()
        if args.brokers == 1:
            extra = restart_broker_and_kill_worker(system, broker, github, args.webhooks)
        else:
            extra = kill_a_broker(system, broker, github, args.webhooks)
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
        return report(system, github, runs, time.monotonic() - started, extra)
    finally:
        system.stop()
        broker.stop()


def restart_broker_and_kill_worker(system: System, broker: LocalBroker, github: GitHub, n: int) -> Extra:
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
    return Extra()


def kill_a_broker(system: System, broker: LocalBroker, github: GitHub, n: int) -> Extra:
    """SIGKILL the node leading most of the namespace's partitions mid-stream; start it again later."""
    extra = Extra(replication=replication_of(system))
    wait_until(lambda: len(github.acknowledged) >= 2 * n // 5 or github.error, 900, 0.5, "40 % sent")
    node, led = busiest_node(system)
    pid = next(s.pid for s in broker.status().nodes if s.node_id == node)
    if pid is None:
        raise AssertionError(f"node {node} has no live process to kill")
    acknowledged = len(github.acknowledged)
    finished_then = finished_count(system)
    say(f"{acknowledged} acknowledged, {finished_then} runs finished: SIGKILL node {node} (leads {led})")
    os.kill(pid, signal.SIGKILL)
    down_at = time.monotonic()
    wait_until(
        lambda: (
            (len(github.acknowledged) >= 7 * n // 10 or github.error or not github.is_alive())
            and time.monotonic() - down_at >= MIN_DOWN_S
        ),
        900,
        0.5,
        "70 % sent",
    )
    extra.accepted_while_down = len(github.acknowledged) - acknowledged
    extra.finished_while_down = finished_count(system) - finished_then
    extra.down_s = time.monotonic() - down_at
    say(
        f"{extra.accepted_while_down} webhooks answered 202 and {extra.finished_while_down} runs finished "
        f"in {extra.down_s:.0f} s with node {node} down: starting it again"
    )
    broker.start(timeout_s=180.0)
    extra.killed = f"node {node} of 3 (led {led}), SIGKILL"
    return extra


class Extra:
    """What a scenario adds to the report."""

    def __init__(self, replication: str | None = None) -> None:
        self.replication = replication
        self.killed: str | None = None
        self.accepted_while_down = 0
        self.finished_while_down = 0
        self.down_s = 0.0

    def figures(self) -> dict[str, object]:
        if self.killed is None:
            return {}
        return {
            "topics (replicas / min.insync.replicas)": self.replication,
            "broker killed": self.killed,
            "seconds it was down": round(self.down_s, 1),
            "answered 202 while it was down": self.accepted_while_down,
            "runs finished while it was down": self.finished_while_down,
        }

    def ok(self) -> bool:
        return self.killed is None or self.accepted_while_down > 0


def _admin(system: System) -> KafkaAdminClient:
    return connect(KafkaAdminClient, system.kafka, client_id="soak")


def namespace_topics(admin: KafkaAdminClient, system: System) -> list[dict[str, Any]]:
    names = [t for t in admin.list_topics() if t.startswith(system.namespace)]
    return list(admin.describe_topics(names))


def busiest_node(system: System) -> tuple[int, str]:
    """The node leading most partitions of the namespace's topics, and how many it leads."""
    admin = _admin(system)
    try:
        leaders = Counter(p["leader_id"] for t in namespace_topics(admin, system) for p in t["partitions"])
    finally:
        admin.close()
    node, count = min(leaders.items(), key=lambda item: (-item[1], item[0]))
    return node, f"{count} of {sum(leaders.values())} partitions"


def replication_of(system: System) -> str:
    """How the namespace's topics are replicated, e.g. "16 topics: 3 / 2"."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = _admin(system)
    try:
        topics = namespace_topics(admin, system)
        configs = admin.describe_configs(
            # A list of keys: the describe form kafka-python documents; its stubs know only the alter form.
            [ConfigResource(ConfigResourceType.TOPIC, t["name"], ["min.insync.replicas"]) for t in topics],  # type: ignore[arg-type]
            config_filter="all",
        )["topic"]
    finally:
        admin.close()
    kinds = Counter(
        (
            min(len(p["replica_nodes"]) for p in t["partitions"]),
            int(configs[t["name"]]["min.insync.replicas"]["value"]),
        )
        for t in topics
    )
    return ", ".join(f"{count} topics: {r} / {m}" for (r, m), count in sorted(kinds.items()))


def finished_count(system: System) -> int:
    return sum(1 for r in system.runs(subscriber="steady") if r["status"] in FINAL)


def report(
    system: System, github: GitHub, runs: list[dict[str, object]], elapsed: float, extra: Extra
) -> int:
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
        **extra.figures(),
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
        and extra.ok()
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
