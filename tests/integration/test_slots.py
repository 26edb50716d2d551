"""Stage slots: a worker runs up to its slots' worth of stages at once, of any runs, and takes a stage
only with a slot free; stages go to whichever worker has one, and workers joining mid-pipeline get work."""

from __future__ import annotations

import pytest

from tests.integration.stage_tools import executions, peak, spans
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SUBSCRIBERS = {"long", "steps", "stalls", "pauses", "quick"}


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("slots"), "tests.pipelines.slots")
    hamster.env.update(HAMSTER_WORKER_SLOTS="2", HAMSTER_TEST_STAGE_S="3")
    with hamster.running(SUBSCRIBERS, workers=2):
        yield hamster


def post_prs(system: System, prefix: str, count: int, first: int = 0) -> list[str]:
    deliveries = []
    for n in range(first, first + count):
        status, delivery = system.post(
            "pull_request", with_repo(load("pull_request", "opened.payload.json"), f"{prefix}/r{n}")
        )
        assert status == 202
        deliveries.append(delivery)
    return deliveries


def finished(system: System, deliveries: list[str], timeout: float = 180) -> list[dict]:
    runs = [run for d in deliveries for run in system.wait_finished(d, timeout=timeout)]
    assert [r["status"] for r in runs] == ["succeeded"] * len(deliveries), runs
    return runs


def test_slots_fill_and_are_never_exceeded(system: System):
    """Eight 3-second stages on two workers of two slots: four run at once, never more than two on one
    worker, and each stage runs exactly once."""
    runs = finished(system, post_prs(system, "slots", 8))
    ids = {r["run_id"] for r in runs}
    ran = [s for s in spans(system) if s.run_id in ids]
    assert len(ran) == 8
    assert set(executions(system, ids).values()) == {1}
    by_worker: dict[int, list] = {}
    for span in ran:
        by_worker.setdefault(span.worker, []).append(span)
    assert len(by_worker) == 2, "both workers ran stages"
    assert max(peak(own) for own in by_worker.values()) == 2
    assert peak(ran) == 4


def test_workers_joining_mid_pipeline_take_work_and_every_run_finishes(system: System):
    """Workers join (and one leaves) while runs are mid-pipeline, twice: every run finishes, every stage
    runs once, and the workers that joined ran stages."""
    deliveries = post_prs(system, "steps", 8)
    for round_ in range(2):
        marks = len(system.marks_list())
        name = f"joiner-{round_}"
        system.start_worker(name)
        wait_until(lambda n=marks: len(system.marks_list()) > n, 60, what="more stages to start")
        # Once it can take stages, more slow stages than the workers before it have slots: some are its.
        wait_until(lambda n=name: "stage worker:" in system.log_tail(n, 400), 120, what=f"{name} to start")
        deliveries += post_prs(system, "steps", 8, first=8 + 8 * round_)
    runs = finished(system, deliveries)
    ids = {r["run_id"] for r in runs}
    assert set(executions(system, ids).values()) == {1}
    assert {(s["name"], s["attempt"]) for r in runs for s in r["stages"]} == {
        ("brief", 1),
        ("slow", 1),
        ("last", 1),
    }
    joiners = {system.procs[f"joiner-{n}"].pid for n in range(2)}
    assert joiners & {s.worker for s in spans(system) if s.run_id in ids}, "a worker that joined took work"
    for n in range(2):
        system.stop(f"joiner-{n}")
