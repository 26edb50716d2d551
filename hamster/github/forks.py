"""Forks: whether a run may have its subscriber's secrets and write to GitHub. Pure.

A pull request whose head lives in another repository than its base (a fork: ``pull_request.head.repo``
is not ``repository``, or is gone) carries code nobody with write access vouched for. Its runs are
**untrusted**, as GitHub Actions treats forks: no secrets (``hamster.execution.secrets``), and the built-in
tasks that write to GitHub (comments, labels, assignees, merges) refuse. Hamster's own reporting (statuses,
check runs) goes on: it is not the pull request's code writing.

A run is trusted when its event is not a fork's pull request, when its subscriber opts in
(``Subscriber(..., trust_forks=True)``), or when a person with write permission on the base repository
commented ``/ok-to-test`` on the pull request: the match agent asks GitHub for the commenter's permission
(as for ``/approve``), then reads the pull request's head *as it is now* and starts its runs again as a
``pull_request`` event (action ``synchronize``) that names who vouched and for which commit. That trust
holds for that commit only: a later push to the fork runs untrusted until someone comments again.

Every ``RunRequested`` carries the decision (``trust``), so the run log says why a run had its secrets.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hamster.github.reporting import MARKER
from hamster.intake.envelope import EventEnvelope, envelope_for
from hamster.intake.github_events import EventInfo
from hamster.runs.events import Trust

COMMAND = "/ok-to-test"
KEY = "hamster"  # where an event Hamster made keeps its own facts (as in hamster.subscribers.dispatch)
WRITERS = frozenset({"admin", "write"})
PR_EVENTS = frozenset(
    {"pull_request", "pull_request_review", "pull_request_review_comment", "pull_request_review_thread"}
)
_OK_TO_TEST = uuid.UUID("5c7c1d6e-0f7b-4a57-9a43-6f0b51d4e0a1")  # the namespace of their delivery ids


def head_repo(payload: dict[str, Any]) -> tuple[bool, str | None]:
    """(whether the payload is a pull request's with a head elsewhere, that head repository's name)."""
    pull = payload.get("pull_request")
    base = payload.get("repository")
    if not isinstance(pull, dict) or not isinstance(base, dict):
        return False, None
    head = pull.get("head")
    repo = head.get("repo") if isinstance(head, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    if not isinstance(name, str):
        return True, None  # the head's repository was deleted: nobody can say whose code it is
    return name.lower() != str(base.get("full_name", "")).lower(), name


def vouched(event: EventInfo) -> str | None:
    """Who commented ``/ok-to-test`` for this event's commit, for an event Hamster made from it."""
    own = event.payload.get(KEY)
    found = own.get("ok_to_test") if isinstance(own, dict) else None
    if not isinstance(found, dict) or found.get("sha") != event.sha or event.sha is None:
        return None
    by = found.get("by")
    return by if isinstance(by, str) else None


def decide(event: EventInfo, *, trust_forks: bool) -> Trust:
    """Whether a run of this event is trusted (see the module's docstring)."""
    if event.name not in PR_EVENTS:
        return Trust(trusted=True, reason="not-a-fork")
    fork, repo = head_repo(event.payload)
    if not fork:
        return Trust(trusted=True, reason="not-a-fork", head_repo=repo)
    by = vouched(event)
    if by is not None:
        return Trust(trusted=True, reason="ok-to-test", by=by, head_repo=repo)
    if trust_forks:
        return Trust(trusted=True, reason="trust-forks", head_repo=repo)
    return Trust(trusted=False, reason="fork", head_repo=repo)


def is_ok_to_test(event: EventInfo) -> bool:
    """A new pull request comment whose first word is ``/ok-to-test``."""
    if event.name != "issue_comment" or event.action != "created" or event.pr_number is None:
        return False
    words = (event.comment or "").split()
    return bool(words) and words[0] == COMMAND


def may_vouch(permission: str) -> bool:
    return permission in WRITERS


def refusal(login: str, repo: str, permission: str) -> str:
    """The reply to someone who may not vouch: a comment of Hamster's own (it carries the marker)."""
    return (
        f"@{login}: only people with write permission on {repo} may comment {COMMAND} "
        f"(yours: {permission}). Nothing was started.\n\n{MARKER}ok-to-test-refused -->"
    )


def ok_to_test_event(comment: EventInfo, pull: dict[str, Any], now: datetime | None = None) -> EventEnvelope:
    """The ``pull_request`` event an ``/ok-to-test`` comment starts: the pull request as GitHub gives it now
    (``pull``: GET /repos/{owner}/{repo}/pulls/{number}), the comment's repository and commenter, and who
    vouched for which commit. Its delivery id derives from the comment's, so a redelivered comment starts
    nothing twice."""
    head = pull.get("head") if isinstance(pull.get("head"), dict) else {}
    sha = head.get("sha") if isinstance(head, dict) else None
    payload = {
        "action": "synchronize",
        "number": comment.pr_number,
        "pull_request": pull,
        "repository": comment.payload.get("repository"),
        "sender": comment.payload.get("sender"),
        KEY: {"ok_to_test": {"by": comment.sender, "sha": sha, "comment_delivery": comment.delivery_id}},
    }
    if comment.installation_id is not None:
        payload["installation"] = {"id": comment.installation_id}
    delivery = str(uuid.uuid5(_OK_TO_TEST, comment.delivery_id))
    return envelope_for("pull_request", delivery, payload, now or datetime.now(UTC))
