"""Concurrency decisions per subscriber: parallel, cancel-superseded, serial and max_parallel."""

from __future__ import annotations

from hamster.concurrency import Admission, InFlight, Policy, admit, lane_of, release, superseded_reason
from hamster.github_events import EventInfo

PARALLEL = Policy()
CANCEL = Policy("cancel-superseded")
SERIAL = Policy("serial")


def running(run_id: str, lane: str = "pr:1") -> InFlight:
    return InFlight(run_id, lane, running=True)


def waiting(run_id: str, lane: str = "pr:1") -> InFlight:
    return InFlight(run_id, lane, running=False)


def test_lane_is_the_pull_request_else_the_branch_else_the_ref():
    """A PR's runs share a lane whatever the branch; a push's lane is its branch; a tag its ref."""
    assert lane_of(EventInfo(name="pull_request", delivery_id="d", pr_number=7, branch="main")) == "pr:7"
    assert lane_of(EventInfo(name="push", delivery_id="d", branch="main")) == "branch:main"
    assert lane_of(EventInfo(name="push", delivery_id="d", ref="refs/tags/v1")) == "ref:refs/tags/v1"


def test_parallel_starts_everything():
    """Without options every run starts at once, whatever is in flight."""
    assert admit(PARALLEL, [running("a"), running("b")], "pr:1") == Admission(start=True)


def test_cancel_superseded_cancels_the_lane_only():
    """A new run cancels the runs in flight in its own lane, running or waiting, and starts."""
    flight = [running("a"), waiting("b"), running("c", lane="pr:2")]
    assert admit(CANCEL, flight, "pr:1") == Admission(start=True, cancel=("a", "b"))
    assert admit(CANCEL, flight, "pr:3") == Admission(start=True)


def test_cancelled_run_names_the_run_that_superseded_it():
    """The reason recorded with RunCancelled names the superseding run."""
    assert "run-new" in superseded_reason("run-new")


def test_cancel_superseded_frees_room_under_max_parallel():
    """The runs it cancels no longer count against max_parallel."""
    assert admit(Policy("cancel-superseded", 1), [running("a")], "pr:1") == Admission(True, ("a",))
    assert admit(Policy("cancel-superseded", 1), [running("a", lane="pr:2")], "pr:1") == Admission(False)


def test_serial_waits_behind_its_lane_and_not_behind_others():
    """Serial: one run at a time per lane; another lane starts at once."""
    assert admit(SERIAL, [running("a")], "pr:1") == Admission(start=False)
    assert admit(SERIAL, [running("a"), waiting("b")], "pr:2") == Admission(start=True)


def test_serial_release_starts_the_oldest_waiting_run_of_the_lane():
    """When a serial run finishes, the next run of its lane starts, in request order, one only."""
    assert release(SERIAL, [waiting("b"), waiting("c")]) == ["b"]
    assert release(SERIAL, [running("x", lane="pr:2"), waiting("b"), waiting("c"), waiting("d", "pr:2")]) == [
        "b"
    ]


def test_max_parallel_caps_running_runs_per_repository():
    """max_parallel=2: a third run waits; when one finishes, the oldest waiting one starts."""
    cap = Policy(max_parallel=2)
    assert admit(cap, [running("a", "pr:1"), running("b", "pr:2")], "pr:3") == Admission(start=False)
    assert admit(cap, [running("a", "pr:1")], "pr:3") == Admission(start=True)
    assert release(cap, [running("b", "pr:2"), waiting("c", "pr:3"), waiting("d", "pr:4")]) == ["c"]
    assert release(cap, [waiting("c", "pr:3"), waiting("d", "pr:4"), waiting("e", "pr:5")]) == ["c", "d"]


def test_newcomer_does_not_overtake_runs_waiting_for_room():
    """A new run waits while older runs wait for room, even if room just appeared."""
    cap = Policy(max_parallel=2)
    assert admit(cap, [running("a", "pr:1"), waiting("b", "pr:2")], "pr:3") == Admission(start=False)


def test_nothing_waiting_nothing_released():
    """Release with only running runs starts nothing."""
    assert release(SERIAL, [running("a")]) == []
