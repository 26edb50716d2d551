"""Approvals: who may end an approval stage, and which stages an ``/approve`` or ``/deny`` comment ends.
Pure; the match agent asks GitHub for the commenter's permission and sends the decisions as ``DecideStage``
commands, which the run-control agent records (``StageApproved`` / ``StageDenied``) like the dashboard's
button does.

A comment decides every approval stage that waits (its needs succeeded, nobody decided yet) in the runs in
flight of that pull request. Only a person with write permission on the repository may: GitHub's
``permission`` field says ``admin`` or ``write`` (``maintain`` shows as ``write`` there,
https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from hamster.github_events import EventInfo
from hamster.lifecycle import RunState

Verb = Literal["approve", "deny"]
WRITERS = frozenset({"admin", "write"})


def command_of(event: EventInfo) -> Verb | None:
    """``approve`` or ``deny`` for a new pull request comment starting with ``/approve`` or ``/deny``."""
    if event.name != "issue_comment" or event.action != "created" or event.pr_number is None:
        return None
    words = (event.comment or "").split()
    first = words[0] if words else ""
    return {"/approve": "approve", "/deny": "deny"}.get(first)  # type: ignore[return-value]


def may_decide(permission: str) -> bool:
    return permission in WRITERS


def waiting(states: Iterable[RunState], repo: str | None, pr_number: int | None) -> list[tuple[str, str]]:
    """(run id, stage) of every approval stage waiting for a person in this pull request's runs."""
    found = []
    for state in states:
        if state.finished or state.event.repo != repo or state.event.pr_number != pr_number:
            continue
        for index, stage in enumerate(state.stages):
            if stage.approval and stage.status == "pending" and state.ready(index):
                found.append((state.run_id, stage.name))
    return found
