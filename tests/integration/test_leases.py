"""Leases: a killed worker's stage is taken over when its lease runs out (well before Kafka's session
timeout), a stopping worker finishes what it can and hands the rest over at once, an attempt that lost its
lease can record nothing, and the reaper picks up a run whose stage request was lost."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from datetime import timedelta

import pytest
from kafka import KafkaProducer

from hamster import ids
from hamster.intake.envelope import decode_envelope
from hamster.intake.github_events import event_info
from hamster.runs.audit import seal
from hamster.runs.events import LeaseRenewed, RunRequested, StageStarted, StageSucceeded, encode_run_event
from hamster.subscribers.spec import load_catalog
from streams.reader import partition_for, read_topic
from tests.integration.fault_tools import holders, run_log, running, worker_named
from tests.integration.stage_tools import executions, folded, spans, wait_ended
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SUBSCRIBERS = {"long", "steps", "stalls", "pauses", "quick"}
LEASE_S = 5.0


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("leases"), "tests.pipelines.slots")
    # Kafka's session (120 s) is far longer than the lease (5 s): only the lease can explain a quick takeover.
    hamster.env.update(
        HAMSTER_WORKER_SLOTS="2",
        HAMSTER_STAGE_LEASE_S=str(LEASE_S),
        HAMSTER_KAFKA_SESSION_TIMEOUT_S="120",
        HAMSTER_SHUTDOWN_GRACE_S="8",
        HAMSTER_TEST_STAGE_S="4",
        HAMSTER_REOFFER_AFTER_S="3",
    )
    with hamster.running(SUBSCRIBERS, workers=2):
        yield hamster


def post(system: System, repo: str) -> str:
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), repo)
    )
    assert status == 202
    return delivery


def holder(system: System, run_prefix: str = "") -> tuple[str, str, int, int]:
    """(run, worker name, worker pid, attempt pid) of the newest attempt 1 waiting to be cut off."""
    [note] = wait_until(lambda: holders(system)[-1:] if len(holders(system)) > holder.seen else [], 60, 0.2)
    holder.seen += 1
    run_id, _stage, _attempt, worker_pid, attempt_pid = note
    return run_id, worker_named(system, int(worker_pid)), int(worker_pid), int(attempt_pid)


holder.seen = 0


def restore(system: System, name: str) -> None:
    system.procs.pop(name, None)
    system.start_worker(name)
    system.wait_workers_ready(SUBSCRIBERS)


def steps(log: list) -> list[tuple[str, int | None, str]]:
    return [(r.type, getattr(r, "attempt", None), r.worker) for r in log if r.type != "LeaseRenewed"]


def test_sigkill_mid_stage_is_taken_over_within_the_lease(system: System):
    """SIGKILL the worker running a stage: its attempt dies with it, the other worker starts attempt 2
    once the lease ran out (not after Kafka's 120 s session), and the run completes."""
    post(system, "stall/killed")
    run_id, victim, _, attempt_pid = holder(system)
    system.kill(victim)
    killed_at = time.time()
    wait_until(lambda: not running(attempt_pid), 30, what="the attempt to die with its worker")
    run = wait_ended(system, run_id)
    assert run.status == "succeeded", run
    assert [(s.name, s.attempt) for s in run.stages] == [("stalls", 2), ("brief", 1)]
    log = run_log(system, run_id)
    started = [r for r in log if isinstance(r, StageStarted) and r.stage == "stalls"]
    assert [r.attempt for r in started] == [1, 2]
    assert started[1].worker != started[0].worker
    # The takeover came after the lease, and long before Kafka would have noticed the dead worker.
    taken_after = started[1].occurred_at.timestamp() - killed_at
    assert 0 < taken_after < 60
    assert [(s, a) for r, s, a in system.marks_list() if r == run_id] == [
        ("stalls", 1),
        ("stalls", 2),
        ("brief", 1),
    ]
    restore(system, victim)


def same_partition_deliveries(*subscribers: str) -> list[str]:
    """Delivery ids whose runs (one per subscriber) share a run-log partition, so one worker claims both."""
    while True:
        chosen = [str(uuid.uuid4()) for _ in subscribers]
        parts = {partition_for(ids.run_id(d, s), 4) for d, s in zip(chosen, subscribers, strict=True)}
        if len(parts) == 1:
            return chosen


def test_sigterm_finishes_what_it_can_and_hands_the_rest_over(system: System):
    """SIGTERM a worker running two stages: the one that ends within the grace time finishes there; the
    other is stopped and its lease released, so the other worker starts it at once (before the lease would
    have run out); the worker exits by itself."""
    payload = load("pull_request", "opened.payload.json")
    first, second = same_partition_deliveries("pauses", "stalls")
    assert system.post("pull_request", with_repo(payload, "pause/drained"), delivery=first)[0] == 202
    finishing_run, worker, worker_pid, _ = holder(system)
    assert system.post("pull_request", with_repo(payload, "stall/handed"), delivery=second)[0] == 202
    stuck_run, stuck_worker, _, stuck_pid = holder(system)
    assert stuck_worker == worker, "the holder of the runs' partition claimed both"
    proc = system.procs[worker]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "the stopping worker exited by itself"
    assert not running(stuck_pid), "the attempt it could not finish was stopped"
    drained, handed = wait_ended(system, finishing_run), wait_ended(system, stuck_run)
    assert drained.status == handed.status == "succeeded"
    me = f"{socket.gethostname()}:{worker_pid}"
    [done] = [
        r for r in run_log(system, finishing_run) if isinstance(r, StageSucceeded) and r.stage == "pauses"
    ]
    assert (done.attempt, done.worker) == (1, me), (
        "the stage that could finish finished on the stopping worker"
    )
    log = run_log(system, stuck_run)
    claims = [r for r in log if isinstance(r, StageStarted) and r.stage == "stalls"]
    assert [(c.attempt, c.worker == me) for c in claims] == [(1, True), (2, False)]
    [released] = [r for r in log if isinstance(r, LeaseRenewed) and r.released]
    assert (released.attempt, released.worker) == (1, me)
    held = [claims[0].occurred_at + timedelta(seconds=LEASE_S)]
    held += [r.until for r in log if isinstance(r, LeaseRenewed) and not r.released]
    assert claims[1].occurred_at < max(held), "handed over at once, not after the lease ran out"
    assert executions(system, {finishing_run}) == {(finishing_run, "pauses"): 1, (finishing_run, "brief"): 1}
    restore(system, worker)


def test_an_attempt_that_lost_its_lease_records_nothing(system: System):
    """Freeze the worker running a stage (and the stage's process) past its lease: another worker takes the
    stage over as attempt 2 and the run succeeds with it. When the frozen worker wakes up, it stops its
    attempt at once; whatever it still writes for attempt 1 is refused by the state machine, and the run
    stays as attempt 2 made it."""
    post(system, "stall/frozen")
    run_id, worker, worker_pid, attempt_pid = holder(system)
    frozen = [worker_pid, attempt_pid]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        run = wait_ended(system, run_id)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert run.status == "succeeded"
    assert [(s.name, s.attempt) for s in run.stages] == [("stalls", 2), ("brief", 1)]
    wait_until(lambda: not running(attempt_pid), 30, what="the woken worker to stop its stale attempt")
    time.sleep(2)  # let the woken worker write whatever it was about to
    log = run_log(system, run_id)
    state, refused = folded(system, run_id)
    assert state is not None and state.status == "succeeded"
    assert [(s.name, s.attempt) for s in state.stages] == [("stalls", 2), ("brief", 1)]
    me = f"{socket.gethostname()}:{worker_pid}"
    takeover = next(
        n for n, r in enumerate(log) if isinstance(r, StageStarted) and (r.stage, r.attempt) == ("stalls", 2)
    )
    stale = [r for r in log[takeover:] if r.worker == me and getattr(r, "attempt", None) == 1]
    assert all(r in refused for r in stale), "every record attempt 1 wrote after the takeover was refused"
    assert "stage stalls attempt 1 stopped" in system.log_tail(worker, 400)
    # Attempt 1 never ran to its end: it was frozen, then stopped; attempt 2 ran once.
    ended = [(s.stage, s.attempt) for s in spans(system) if s.run_id == run_id]
    assert ended == [("stalls", 2), ("brief", 1)]


def test_the_reaper_offers_a_run_whose_stage_request_was_lost(system: System):
    """A run whose RunRequested is in the log but whose stage request never got sent (its sender died) is
    offered again by the reaper from its webhook in the events topic, and runs."""
    delivery = post(system, "nomatch/lost")  # stored in the events topic; no subscriber matches it
    bootstrap = system.env["HAMSTER_KAFKA_BOOTSTRAP"]
    [stored] = [
        r
        for r in read_topic(system.kafka, f"{system.namespace}.events")
        if decode_envelope(r.value).delivery_id == delivery
    ]
    envelope = decode_envelope(stored.value)
    info = event_info(envelope.event, envelope.delivery_id, envelope.payload)
    spec = load_catalog("tests.pipelines.slots").get("quick").spec
    run_id = ids.run_id(delivery, "quick")
    requested = RunRequested(
        event_id=ids.event_id(run_id, 1),
        run_id=run_id,
        seq=1,
        subscriber=spec.name,
        subscriber_version=spec.version,
        pipeline=spec.pipeline,
        event=info.model_copy(update={"payload": {}}),
        events_offset=(stored.partition, stored.offset),
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        producer.send(
            f"{system.namespace}.run-events", key=run_id.encode(), value=encode_run_event(seal(requested, ""))
        ).get(timeout=30)
    finally:
        producer.close()
    run = wait_ended(system, run_id)
    assert run.status == "succeeded" and run.stages[0].name == "brief"
    logs = "".join(system.log_tail(name, 400) for name in list(system.worker_ports) if name in system.procs)
    assert "stage request sent again" in logs
