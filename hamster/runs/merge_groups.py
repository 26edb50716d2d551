"""Merge queues: which runs a merge group started, and which of them to cancel when GitHub destroys it.

Theory of operation
-------------------
GitHub's merge queue builds a *merge group* for each queued pull request: a temporary branch
``gh-readonly-queue/<base>/pr-<n>-<sha>`` holding the base branch plus the queued pull requests up to this
one, and sends ``merge_group`` ``checks_requested`` for its head commit. The required checks must then
report on that commit. When the queue is done with the group it sends ``destroyed`` with a ``reason``:
``merged``, ``invalidated`` (a group ahead of it failed, or the base branch moved) or ``dequeued``
(https://docs.github.com/en/webhooks/webhook-events-and-payloads#merge_group).

A destroyed group's runs test a commit nobody will merge, so they are cancelled (``CancelRun``, carried out
by the cancellation agent; a run that already ended stays as it is). A merged group's runs are only
forgotten: the queue merged the group because its required runs passed, and a cancellation of a slower
one would mark what is now the base branch's head commit.

The match agent keeps the runs of each group, keyed ``<repository>:<head sha>``, in the ``merge-groups``
table. The events topic is keyed by repository, so a group's ``checks_requested`` and ``destroyed`` reach
the same partition, and the table (partitioned like the events topic) holds the group there. A group whose
``destroyed`` never came (a lost webhook, a replayed ``checks_requested``) is dropped after ``GROUP_TTL_S``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hamster.intake.github_events import EventInfo
from hamster.runs.events import CancelRun, RunRequested

GROUP_TTL_S = 24 * 3600.0  # far past a merge queue's status check timeout (60 minutes by default)
MERGED = "merged"


class GroupRun(BaseModel):
    """One run a merge group started, with what a ``CancelRun`` of it needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    requested: RunRequested
    requested_offset: int | None = None


class GroupRuns(BaseModel):
    """The ``merge-groups`` table's value: a group's runs, and where and when it was first seen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: int  # of the events topic: only that partition's records may delete the key (see match)
    at: float  # unix time the group's first run was remembered
    runs: tuple[GroupRun, ...] = ()


def group_key(info: EventInfo) -> str | None:
    """The table key of a merge_group event's group; None for any other event."""
    if info.name != "merge_group" or not info.repo or not info.sha:
        return None
    return f"{info.repo}:{info.sha}"


def is_destroyed(info: EventInfo) -> bool:
    return info.name == "merge_group" and info.action == "destroyed"


def destroyed_reason(info: EventInfo) -> str:
    reason = info.payload.get("reason")
    return reason if isinstance(reason, str) and reason else "destroyed"


def cancel_reason(reason: str) -> str:
    return f"merge group destroyed: {reason}"


def remember(book: GroupRuns | None, run: GroupRun, partition: int, now: float) -> GroupRuns:
    """The group's runs with ``run``; a run remembered before (a webhook processed again) is kept once."""
    if book is None:
        return GroupRuns(partition=partition, at=now, runs=(run,))
    if any(r.run_id == run.run_id for r in book.runs):
        return book
    return book.model_copy(update={"runs": (*book.runs, run)})


def on_destroyed(book: GroupRuns | None, reason: str) -> list[CancelRun]:
    """The cancellations a destroyed group calls for: its runs, unless the queue merged it."""
    if book is None or reason == MERGED:
        return []
    return [
        CancelRun(
            run_id=run.run_id,
            reason=cancel_reason(reason),
            requested=run.requested,
            requested_offset=run.requested_offset,
        )
        for run in book.runs
    ]


def is_stale(book: GroupRuns, now: float) -> bool:
    """A group kept longer than any merge queue waits for its checks: its ``destroyed`` is not coming."""
    return now - book.at > GROUP_TTL_S
