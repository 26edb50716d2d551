"""Concurrency control per subscriber, on the real broker with real workers: cancel-superseded, serial and
max_parallel. Each run's first stage holds until the test opens its gate, so the order is the test's."""

from __future__ import annotations

import itertools

import pytest

from hamster import ids
from hamster.runs.events import CancelRun
from hamster.subscribers.concurrency import LaneBook
from streams.reader import read_topic
from tests.integration.fault_tools import holders, run_log, running
from tests.integration.system import System, wait_until
from tests.pipelines.lanes import gate_of
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    home = tmp_path_factory.mktemp("lanes")
    with System(kafka_bootstrap, home, "tests.pipelines.lanes").running(
        {"supersede", "serial", "capped"}, workers=2
    ) as hamster:
        yield hamster


def push(system: System, repo: str, number: int, sha: str, action: str = "synchronize") -> str:
    """A pull_request webhook for PR ``number`` of ``repo`` with head ``sha``; its delivery id."""
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    payload.update(action=action, number=number)
    payload["pull_request"]["number"] = number
    payload["pull_request"]["head"]["sha"] = sha
    status, delivery = system.post("pull_request", payload)
    assert status == 202
    return delivery


def holding(system: System, run_id: str) -> list[str]:
    return next((note for note in holders(system) if note[0] == run_id), [])


def wait_holding(system: System, run_id: str) -> list[str]:
    return list(wait_until(lambda: holding(system, run_id), 120, 0.2, what=f"run {run_id} to hold"))


def open_gate(system: System, run_id: str) -> None:
    gate = gate_of(system.marks, run_id)
    gate.parent.mkdir(exist_ok=True)
    gate.touch()


def book(system: System, subscriber: str, repo: str) -> list[tuple[str, bool]]:
    """The lanes agent's latest book for ``subscriber`` in ``repo``, from the lanes table's changelog:
    (run id, started) in request order."""
    key = f"{subscriber}\x1f{repo}".encode()
    latest = [
        r.value for r in read_topic(system.kafka, f"{system.namespace}-lanes-changelog") if r.key == key
    ]
    if not latest or latest[-1] is None:
        return []
    return [(r.run_id, r.running) for r in LaneBook.model_validate_json(latest[-1]).runs]


def wait_book(system: System, subscriber: str, repo: str, expected: list[tuple[str, bool]]) -> None:
    wait_until(
        lambda: book(system, subscriber, repo) == expected, 120, 0.3, what=f"the {subscriber} book {expected}"
    )


def cancels(system: System) -> dict[str, str]:
    """The cancellations sent (run id → reason), from the run-control topic."""
    sent = [
        CancelRun.model_validate_json(r.value)
        for r in read_topic(system.kafka, f"{system.namespace}.run-control")
    ]
    return {c.run_id: c.reason for c in sent}


def run_of(system: System, run_id: str) -> dict:
    [run] = [r for r in system.runs() if r["run_id"] == run_id]
    return run


def status_of(system: System, run_id: str) -> str | None:
    return next((r["status"] for r in system.runs() if r["run_id"] == run_id), None)


def test_a_new_push_cancels_the_superseded_run(system: System):
    """cancel-superseded: a second push to the PR cancels the first run mid-stage (its work killed, recorded
    as cancelled naming the new run, its next stage never run); the new run goes through."""
    first = ids.run_id(push(system, "lanes/supersede", 7, "a" * 40, action="opened"), "supersede")
    [_, _, _, _, pid] = wait_holding(system, first)
    second = ids.run_id(push(system, "lanes/supersede", 7, "b" * 40), "supersede")

    wait_until(lambda: status_of(system, first) == "cancelled", 120, what="the first run to be cancelled")
    wait_until(lambda: not running(int(pid)), 30, what="the cancelled stage's process to end")
    assert run_of(system, first)["reason"] == f"superseded by run {second}"
    assert cancels(system)[first] == f"superseded by run {second}"
    steps = [r.type for r in run_log(system, first) if r.type != "LeaseRenewed"]  # renewals are no steps
    assert steps == ["RunRequested", "StageStarted", "RunCancelled"]

    wait_holding(system, second)
    open_gate(system, second)
    wait_until(lambda: status_of(system, second) == "succeeded", 120, what="the new run to succeed")
    assert [(s, a) for r, s, a in system.marks_list() if r == first] == [("held", 1)]  # never reached `after`


def test_other_pull_requests_are_not_superseded(system: System):
    """cancel-superseded cancels within one lane (one PR) only: both runs are filed and running."""
    one = ids.run_id(push(system, "lanes/supersede", 1, "c" * 40), "supersede")
    wait_holding(system, one)
    two = ids.run_id(push(system, "lanes/supersede", 2, "d" * 40), "supersede")
    wait_book(system, "supersede", "lanes/supersede", [(one, True), (two, True)])
    assert one not in cancels(system) and two not in cancels(system)
    for run_id in (one, two):
        open_gate(system, run_id)
    for run_id in (one, two):
        wait_until(lambda r=run_id: status_of(system, r) == "succeeded", 120, what=f"run {run_id}")
    wait_book(system, "supersede", "lanes/supersede", [])


def test_serial_runs_one_at_a_time_per_pull_request_in_order(system: System):
    """serial: runs of one PR wait for each other and start in request order; another PR does not wait.

    A worker runs one attempt of a task at a time, so the test reads the lanes agent's decisions from
    its books rather than waiting for two held runs at once."""
    lane = [ids.run_id(push(system, "lanes/serial", 3, f"{n}" * 40), "serial") for n in range(3)]
    other = ids.run_id(push(system, "lanes/serial", 4, "e" * 40), "serial")
    open_gate(system, other)
    waiting = [(lane[0], True), (lane[1], False), (lane[2], False)]
    # PR 4's run started at once, while PR 3's first run held the lane: it is running or already done.
    wait_until(
        lambda: (
            (b := book(system, "serial", "lanes/serial")) == [*waiting, (other, True)]
            or (b == waiting and status_of(system, other) == "succeeded")
        ),
        120,
        0.3,
        what="PR 3's runs in line and PR 4's run started",
    )
    wait_holding(system, lane[0])
    open_gate(system, lane[0])
    wait_book(system, "serial", "lanes/serial", [(lane[1], True), (lane[2], False)])
    wait_holding(system, lane[1])
    assert not holding(system, lane[2])
    open_gate(system, lane[1])
    wait_book(system, "serial", "lanes/serial", [(lane[2], True)])
    open_gate(system, lane[2])
    wait_until(lambda: all(status_of(system, r) == "succeeded" for r in [*lane, other]), 120, what="all runs")
    wait_book(system, "serial", "lanes/serial", [])
    runs = [run_of(system, r) for r in lane]
    for earlier, later in itertools.pairwise(runs):
        assert later["started_at"] >= earlier["finished_at"]


def test_max_parallel_caps_runs_per_repository(system: System):
    """max_parallel=1: a second PR's run waits for the first to finish, then starts."""
    first = ids.run_id(push(system, "lanes/capped", 5, "f" * 40), "capped")
    second = ids.run_id(push(system, "lanes/capped", 6, "9" * 40), "capped")
    wait_book(system, "capped", "lanes/capped", [(first, True), (second, False)])
    wait_holding(system, first)
    assert status_of(system, second) == "queued"
    open_gate(system, first)
    wait_book(system, "capped", "lanes/capped", [(second, True)])
    open_gate(system, second)
    wait_until(lambda: status_of(system, second) == "succeeded", 120, what="the second run")
    assert run_of(system, second)["started_at"] >= run_of(system, first)["finished_at"]
