"""A worker SIGKILLed right after it claimed a stage: the stage runs again as a new attempt once the
claim's lease ran out (5 s here), and no record is written twice. (A kill in the middle of a stage, a
stop, and a frozen worker are in ``test_leases``.)
"""

from __future__ import annotations

import itertools

import pytest

from tests.integration.fault_tools import run_log
from tests.integration.system import System
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("crash"), "tests.pipelines.faults")
    hamster.env["HAMSTER_STAGE_LEASE_S"] = "5"
    with hamster.running({"crash", "cut"}, workers=2):
        yield hamster


def test_sigkill_right_after_a_claim_writes_nothing_twice(system: System):
    """The stage kills its own worker right after its StageStarted was appended. Once the claim's lease ran
    out the other worker takes the stage: it runs as attempt 2, every record is written once, the chain
    holds, and no stage runs twice."""
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), "faults/cut")
    )
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=300)
    assert run["status"] == "succeeded", run
    log = [r for r in run_log(system, run["run_id"]) if r.type != "LeaseRenewed"]  # steps only
    assert [(r.type, getattr(r, "stage", None), getattr(r, "attempt", None)) for r in log][1:] == [
        ("StageStarted", "quick", 1),
        ("StageSucceeded", "quick", 1),
        ("StageStarted", "cut", 1),
        ("StageStarted", "cut", 2),
        ("StageSucceeded", "cut", 2),
        ("StageStarted", "follow", 1),
        ("StageSucceeded", "follow", 1),
        ("RunSucceeded", None, None),
    ]
    assert [r.seq for r in log] == list(range(1, len(log) + 1))
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(log))
    assert [(s, a) for r, s, a in system.marks_list() if r == run["run_id"]] == [
        ("quick", 1),
        ("cut", 1),
        ("cut", 2),
        ("follow", 1),
    ]
