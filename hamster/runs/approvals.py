"""Approvals: who may end an approval stage, and which stages an ``/approve`` or ``/deny`` comment ends.
Pure; the match agent (comments) and the check-actions agent (the Approve and Deny buttons on a run's
check run) ask GitHub for the person's permission and send the decisions as ``DecideStage`` commands, which
the run-control agent records (``StageApproved`` / ``StageDenied``) like the dashboard's button does.

A comment decides every approval stage that waits (its needs succeeded, nobody decided yet) in the runs in
flight of that pull request; a button, every one that waits in its run. Only a person with write
permission on the repository may: GitHub's
``permission`` field says ``admin`` or ``write`` (``maintain`` shows as ``write`` there,
https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from hamster.github.reporting import MARKER
from hamster.intake.github_events import EventInfo
from hamster.runs.lifecycle import RunState

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


def refusal(login: str, repo: str, verb: Verb, permission: str) -> str:
    """The reply to someone who may not decide: a comment of Hamster's own (it carries the marker)."""
    return (
        f"@{login}: only people with write permission on {repo} may {verb} "
        f"(yours: {permission}). Nothing was {verb}d.\n\n{MARKER}approval-refused -->"
    )


def waiting_in(state: RunState | None) -> list[str]:
    """The approval stages of a run in flight that wait for a person (None: a run not in flight)."""
    if state is None or state.finished:
        return []
    return [
        stage.name
        for index, stage in enumerate(state.stages)
        if stage.approval and stage.status == "pending" and state.ready(index)
    ]


def waiting(states: Iterable[RunState], repo: str | None, pr_number: int | None) -> list[tuple[str, str]]:
    """(run id, stage) of every approval stage waiting for a person in this pull request's runs."""
    return [
        (state.run_id, name)
        for state in states
        if state.event.repo == repo and state.event.pr_number == pr_number
        for name in waiting_in(state)
    ]
