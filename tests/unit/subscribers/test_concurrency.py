"""Concurrency decisions per subscriber: parallel, cancel-superseded, serial and max_parallel."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hamster.intake.github_events import EventInfo, event_info
from hamster.subscribers.concurrency import (
    InFlight,
    LaneBook,
    LaneChange,
    LaneRun,
    Policy,
    lane_of,
    on_finished,
    on_requested,
    release,
    superseded,
    superseded_reason,
)
from tests.samples import load

PARALLEL = Policy()
CANCEL = Policy("cancel-superseded")
SERIAL = Policy("serial")


def running(run_id: str, lane: str = "pr:1") -> InFlight:
    return InFlight(run_id, lane, running=True)


def waiting(run_id: str, lane: str = "pr:1") -> InFlight:
    return InFlight(run_id, lane, running=False)


def new(run_id: str, lane: str = "pr:1") -> LaneRun:
    return LaneRun(run_id=run_id, lane=lane, request=f"request of {run_id}")


def file_all(policy: Policy, *runs: LaneRun) -> tuple[LaneBook | None, list[LaneChange]]:
    book: LaneBook | None = None
    changes = []
    for run in runs:
        change = on_requested(book, policy, run)
        changes.append(change)
        book = change.book
    return book, changes


def started(change: LaneChange) -> list[str]:
    return [r.run_id for r in change.start]


def states(book: LaneBook | None) -> list[tuple[str, bool]]:
    return [(r.run_id, r.running) for r in (book.runs if book else ())]


def test_lane_is_the_pull_request_else_the_branch_else_the_ref():
    """A PR's runs share a lane whatever the branch; a push's lane is its branch; a tag its ref."""
    assert lane_of(EventInfo(name="pull_request", delivery_id="d", pr_number=7, branch="main")) == "pr:7"
    assert lane_of(EventInfo(name="push", delivery_id="d", branch="main")) == "branch:main"
    assert lane_of(EventInfo(name="push", delivery_id="d", ref="refs/tags/v1")) == "ref:refs/tags/v1"


def test_each_merge_group_is_a_lane_of_its_own():
    """Two merge groups of one base branch are two lanes, so cancel-superseded never cancels a group."""
    first = event_info("merge_group", "d1", load("merge_group", "checks_requested.payload.json"))
    payload = load("merge_group", "checks_requested.payload.json")
    payload["merge_group"]["head_ref"] = "refs/heads/gh-readonly-queue/main/pr-105-2ffea6db"  # derived
    second = event_info("merge_group", "d2", payload)
    assert first.branch == second.branch == "main"
    assert lane_of(first) == f"merge-group:{first.ref}"
    assert lane_of(first) != lane_of(second)


def test_a_deployment_lane_is_its_environment():
    """Deployments of any ref to one environment share a lane; another environment is another lane."""
    payload = load("deployment", "payload.json")
    production = event_info("deployment", "d1", payload)
    payload["deployment"].update(environment="staging", ref="release/2")  # derived
    staging = event_info("deployment", "d2", payload)
    assert lane_of(production) == "environment:production"
    assert lane_of(staging) == "environment:staging"


def test_only_non_default_policies_are_governed():
    """Plain parallel runs skip the lanes agent; any other option sends runs through it."""
    assert not PARALLEL.governed
    assert CANCEL.governed and SERIAL.governed and Policy(max_parallel=3).governed


def test_parallel_starts_everything():
    """Without options every run starts at once, whatever is in flight."""
    _, changes = file_all(PARALLEL, new("a"), new("b"), new("c", "pr:2"))
    assert [started(c) for c in changes] == [["a"], ["b"], ["c"]]
    assert superseded(PARALLEL, [running("a")], "pr:1") == ()


def test_cancel_superseded_cancels_the_lane_only():
    """A new run cancels the runs in flight in its own lane, running or waiting, and starts."""
    flight = [running("a"), waiting("b"), running("c", lane="pr:2")]
    assert superseded(CANCEL, flight, "pr:1") == ("a", "b")
    assert superseded(CANCEL, flight, "pr:3") == ()
    book, changes = file_all(CANCEL, new("a"), new("c", "pr:2"), new("b"))
    assert [r.run_id for r in changes[2].cancel] == ["a"]
    assert changes[2].cancel[0].request == "request of a"  # enough to cancel it even before it started
    assert started(changes[2]) == ["b"]
    assert states(book) == [("c", True), ("b", True)]


def test_cancelled_run_names_the_run_that_superseded_it():
    """The reason recorded with RunCancelled names the superseding run."""
    assert "run-new" in superseded_reason("run-new")


def test_cancel_superseded_frees_room_under_max_parallel():
    """The runs it cancels no longer count against max_parallel; another lane's run does."""
    cap1 = Policy("cancel-superseded", 1)
    _, changes = file_all(cap1, new("a"), new("b"))
    assert ([r.run_id for r in changes[1].cancel], started(changes[1])) == (["a"], ["b"])
    book, changes = file_all(cap1, new("a", "pr:2"), new("b"))
    assert (changes[1].cancel, started(changes[1])) == ((), [])
    assert states(book) == [("a", True), ("b", False)]


def test_serial_waits_behind_its_lane_and_not_behind_others():
    """Serial: one run at a time per lane, the others wait in request order; another lane starts at once."""
    book, changes = file_all(SERIAL, new("a"), new("b"), new("x", "pr:2"), new("c"))
    assert [started(c) for c in changes] == [["a"], [], ["x"], []]
    change = on_finished(book, "a")
    assert started(change) == ["b"]  # the oldest waiting run of the lane, one only
    assert states(change.book) == [("b", True), ("x", True), ("c", False)]
    assert started(on_finished(change.book, "x")) == []  # another lane finishing frees nothing here


def test_serial_release_starts_the_oldest_waiting_run_of_the_lane():
    """When a serial run finishes, the next run of its lane starts, in request order, one only."""
    assert release(SERIAL, [waiting("b"), waiting("c")]) == ["b"]
    assert release(SERIAL, [running("x", lane="pr:2"), waiting("b"), waiting("c"), waiting("d", "pr:2")]) == [
        "b"
    ]


def test_max_parallel_caps_running_runs_per_repository():
    """max_parallel=2: a third run waits; when one finishes, the oldest waiting one starts."""
    cap = Policy(max_parallel=2)
    book, changes = file_all(cap, new("a", "pr:1"), new("b", "pr:2"), new("c", "pr:3"), new("d", "pr:4"))
    assert [started(c) for c in changes] == [["a"], ["b"], [], []]
    assert started(on_finished(book, "b")) == ["c"]
    assert release(cap, [waiting("c", "pr:3"), waiting("d", "pr:4"), waiting("e", "pr:5")]) == ["c", "d"]


def test_newcomer_does_not_overtake_runs_waiting_for_room():
    """A new run waits while older runs wait for room, and they start before it when room appears."""
    cap = Policy(max_parallel=1)
    book, changes = file_all(cap, new("a", "pr:1"), new("b", "pr:2"), new("c", "pr:3"))
    assert [started(c) for c in changes] == [["a"], [], []]
    assert started(on_finished(book, "a")) == ["b"]


def test_a_repeated_command_changes_nothing():
    """Commands arrive at least once: a run filed twice, or finished twice, is one change."""
    book, _ = file_all(SERIAL, new("a"), new("b"))
    again = on_requested(book, SERIAL, new("b"))
    assert (again.book, again.start, again.cancel) == (book, (), ())
    once = on_finished(book, "a")
    twice = on_finished(once.book, "a")
    assert (twice.book, twice.start) == (once.book, ())


def test_the_newest_policy_applies():
    """A subscriber's changed options take effect with its next run."""
    book, _ = file_all(SERIAL, new("a"), new("b"))
    change = on_requested(book, PARALLEL, new("c"))
    assert started(change) == ["b", "c"]


def test_nothing_waiting_nothing_released():
    """Release with only running runs starts nothing."""
    assert release(SERIAL, [running("a")]) == []


POLICIES = [
    PARALLEL,
    CANCEL,
    SERIAL,
    Policy(max_parallel=2),
    Policy("serial", 1),
    Policy("cancel-superseded", 2),
]


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    commands=st.lists(
        st.tuples(st.booleans(), st.integers(0, 7), st.sampled_from(["pr:1", "pr:2", "branch:a"]))
    ),
)
def test_books_keep_their_promises_whatever_happens(
    policy: Policy, commands: list[tuple[bool, int, str]]
) -> None:
    """Any sequence of runs filed and finished: a lane of a serial subscriber never runs two at once, no
    more than max_parallel run, cancel-superseded leaves one run per lane, runs of a lane start in request
    order, and no run waits that could start (nothing is forgotten)."""
    book: LaneBook | None = None
    filed: list[str] = []
    started_order: list[str] = []
    for n, (file, pick, lane) in enumerate(commands):
        if file or not filed:
            run_id = f"r{n}"
            filed.append(run_id)
            change = on_requested(book, policy, new(run_id, lane))
        else:
            change = on_finished(book, filed[pick % len(filed)])
        book = change.book
        started_order += [r.run_id for r in change.start]
        flight = book.in_flight()
        running_now = [r for r in flight if r.running]
        assert release(policy, flight) == []  # settled: nothing that may start is left waiting
        if policy.max_parallel is not None:
            assert len(running_now) <= policy.max_parallel
        for one_lane in {r.lane for r in flight}:
            in_lane = [r for r in flight if r.lane == one_lane]
            if policy.concurrency == "serial":
                assert sum(r.running for r in in_lane) <= 1
            if policy.concurrency == "cancel-superseded":
                assert len(in_lane) <= 1
        assert [r.run_id for r in book.runs] == sorted((r.run_id for r in book.runs), key=filed.index)
    for lane in {"pr:1", "pr:2", "branch:a"}:
        of_lane = [
            r for r in started_order if any(c[2] == lane and f"r{i}" == r for i, c in enumerate(commands))
        ]
        assert of_lane == sorted(of_lane, key=filed.index)  # a lane's runs start in the order requested
