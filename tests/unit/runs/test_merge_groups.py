"""Merge groups: what the match agent remembers of a group's runs, and what a destroyed group cancels."""

from __future__ import annotations

import pytest

from hamster.intake.github_events import event_info
from hamster.runs.events import RunRequested
from hamster.runs.merge_groups import (
    GROUP_TTL_S,
    GroupRun,
    GroupRuns,
    cancel_reason,
    destroyed_reason,
    group_key,
    is_destroyed,
    is_stale,
    on_destroyed,
    remember,
)
from tests.samples import load

SAMPLE = load("merge_group", "checks_requested.payload.json")


def destroyed(reason: str) -> dict:
    """GitHub publishes no ``destroyed`` sample: the recorded checks_requested with action and reason."""
    payload = load("merge_group", "checks_requested.payload.json")
    payload.update(action="destroyed", reason=reason)
    return payload


def run(run_id: str, offset: int = 3) -> GroupRun:
    info = event_info("merge_group", "d-1", SAMPLE).model_copy(update={"payload": {}})
    requested = RunRequested(
        event_id=f"{run_id}-1",
        run_id=run_id,
        seq=1,
        subscriber="required",
        subscriber_version="v1",
        pipeline=("tests",),
        event=info,
    )
    return GroupRun(run_id=run_id, requested=requested, requested_offset=offset)


def test_both_events_of_a_group_share_its_key():
    """checks_requested and destroyed of one group give the same key: repository and head sha."""
    key = group_key(event_info("merge_group", "d-1", SAMPLE))
    assert key == "octo-org/octo-repo:2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
    assert group_key(event_info("merge_group", "d-2", destroyed("dequeued"))) == key


def test_other_events_have_no_group():
    """A pull_request has no merge group, and is never a destroyed group."""
    info = event_info("pull_request", "d", load("pull_request", "opened.payload.json"))
    assert group_key(info) is None
    assert not is_destroyed(info)


def test_destroyed_and_its_reason():
    """destroyed is told from checks_requested, and its reason read from the payload."""
    info = event_info("merge_group", "d", destroyed("invalidated"))
    assert is_destroyed(info) and destroyed_reason(info) == "invalidated"
    assert not is_destroyed(event_info("merge_group", "d", SAMPLE))


def test_remember_keeps_each_run_once():
    """Remembering the same run again (a webhook processed twice) changes nothing."""
    book = remember(None, run("r1"), partition=2, now=100.0)
    book = remember(book, run("r2"), partition=2, now=150.0)
    assert remember(book, run("r1"), partition=2, now=200.0) == book
    assert [r.run_id for r in book.runs] == ["r1", "r2"]
    assert (book.partition, book.at) == (2, 100.0)


@pytest.mark.parametrize("reason", ["dequeued", "invalidated"])
def test_destroyed_group_cancels_its_runs(reason):
    """A dequeued or invalidated group cancels every run it started, with the run's RunRequested."""
    book = remember(remember(None, run("r1", 3), 0, 1.0), run("r2", 7), 0, 2.0)
    cancels = on_destroyed(book, reason)
    assert [(c.run_id, c.requested_offset) for c in cancels] == [("r1", 3), ("r2", 7)]
    assert {c.reason for c in cancels} == {cancel_reason(reason)} == {f"merge group destroyed: {reason}"}
    assert cancels[0].requested == book.runs[0].requested


def test_merged_group_cancels_nothing():
    """A merged group's runs are forgotten, not cancelled: a late failure would mark the base's head."""
    assert on_destroyed(remember(None, run("r1"), 0, 1.0), "merged") == []


def test_unknown_group_cancels_nothing():
    """A destroyed group that started no run here cancels nothing."""
    assert on_destroyed(None, "dequeued") == []


def test_stale_after_the_ttl():
    """A group is dropped only once it is older than any merge queue waits."""
    book = GroupRuns(partition=0, at=1000.0)
    assert not is_stale(book, 1000.0 + GROUP_TTL_S)
    assert is_stale(book, 1000.0 + GROUP_TTL_S + 1)
