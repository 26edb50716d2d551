"""What Hamster knows about GitHub's webhook events: their names, and the facts a pipeline filters on.

Everything here is pure: a payload in, facts out. Field locations follow GitHub's webhook reference,
https://docs.github.com/en/webhooks/webhook-events-and-payloads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# Every event GitHub sends (X-GitHub-Event), per the reference above. The intake accepts any name; this
# list only catches typos in a subscriber's ``events``.
EVENT_NAMES = frozenset(
    """
    branch_protection_configuration branch_protection_rule check_run check_suite code_scanning_alert
    commit_comment create custom_property custom_property_values delete dependabot_alert deploy_key
    deployment deployment_protection_rule deployment_review deployment_status discussion
    discussion_comment fork github_app_authorization gollum installation installation_repositories
    installation_target issue_comment issue_dependencies issues label marketplace_purchase member
    membership merge_group meta milestone org_block organization package page_build
    personal_access_token_request ping project project_card project_column projects_v2 projects_v2_item
    projects_v2_status_update public pull_request pull_request_review pull_request_review_comment
    pull_request_review_thread push registry_package release repository repository_advisory
    repository_dispatch repository_import repository_ruleset repository_vulnerability_alert
    secret_scanning_alert secret_scanning_alert_location secret_scanning_scan security_advisory
    security_and_analysis sponsorship star status sub_issues team team_add watch workflow_dispatch
    workflow_job workflow_run
    """.split()
)

BRANCH_PREFIX = "refs/heads/"


class EventInfo(BaseModel):
    """``ctx.event``: one webhook as a pipeline sees it. ``None`` where the event has no such thing."""

    model_config = ConfigDict(frozen=True)

    name: str
    action: str | None = None
    repo: str | None = None
    delivery_id: str
    sender: str | None = None
    ref: str | None = None
    branch: str | None = None
    sha: str | None = None
    pr_number: int | None = None
    labels: tuple[str, ...] = ()
    changed_paths: tuple[str, ...] | None = None  # None: the payload does not list files
    comment: str | None = None
    # The GitHub App installation the webhook came through (``installation.id``); None for a repository
    # webhook. With an app, the run's GitHub calls use this installation's token.
    installation_id: int | None = None
    payload: dict[str, Any] = {}


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ref_and_branch(event: str, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    if event == "push":
        ref = _str(payload.get("ref"))
        # Tag pushes (refs/tags/...) have no branch, so they never match a ``branches`` filter.
        branch = ref[len(BRANCH_PREFIX) :] if ref and ref.startswith(BRANCH_PREFIX) else None
        return ref, branch
    if event in {"create", "delete"}:
        ref = _str(payload.get("ref"))
        return ref, ref if payload.get("ref_type") == "branch" else None
    base = _str(_get(payload, "pull_request", "base", "ref"))
    if base is not None:  # pull_request and its review events: the base branch
        return _str(_get(payload, "pull_request", "head", "ref")), base
    for suite in ("check_suite", "check_run", "workflow_run"):
        head = _str(_get(payload, suite, "head_branch"))
        if head is not None:
            return BRANCH_PREFIX + head, head
    if event == "status":
        branches = payload.get("branches")
        if isinstance(branches, list) and branches and isinstance(branches[0], dict):
            name = _str(branches[0].get("name"))
            return (BRANCH_PREFIX + name if name else None), name
    return None, None


def _sha(event: str, payload: dict[str, Any]) -> str | None:
    if event == "push":
        after = _str(payload.get("after"))
        return None if after and set(after) == {"0"} else after  # a deleted branch has no head
    return (
        _str(_get(payload, "pull_request", "head", "sha"))
        or _str(_get(payload, "check_suite", "head_sha"))
        or _str(_get(payload, "check_run", "head_sha"))
        or _str(_get(payload, "workflow_run", "head_sha"))
        or (_str(payload.get("sha")) if event == "status" else None)
    )


def _pr_number(payload: dict[str, Any]) -> int | None:
    number = _int(_get(payload, "pull_request", "number"))
    if number is not None:
        return number
    issue = payload.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request"):  # a comment on a PR arrives as an issue
        return _int(issue.get("number"))
    for suite in ("check_suite", "check_run"):
        prs = _get(payload, suite, "pull_requests")
        if isinstance(prs, list) and prs and isinstance(prs[0], dict):
            return _int(prs[0].get("number"))
    return None


def _labels(payload: dict[str, Any]) -> tuple[str, ...]:
    for holder in ("pull_request", "issue"):
        labels = _get(payload, holder, "labels")
        if isinstance(labels, list):
            return tuple(n for n in (_str(lb.get("name")) for lb in labels if isinstance(lb, dict)) if n)
    return ()


def _changed_paths(payload: dict[str, Any]) -> tuple[str, ...] | None:
    commits = payload.get("commits")
    if not isinstance(commits, list):
        return None
    paths: dict[str, None] = {}
    for commit in commits:
        for kind in ("added", "modified", "removed"):
            for path in commit.get(kind) or () if isinstance(commit, dict) else ():
                if isinstance(path, str):
                    paths[path] = None
    return tuple(paths)


def event_info(event: str, delivery_id: str, payload: dict[str, Any]) -> EventInfo:
    """The facts of one webhook, for matching and for ``ctx.event``."""
    ref, branch = _ref_and_branch(event, payload)
    return EventInfo(
        name=event,
        action=_str(payload.get("action")),
        repo=_str(_get(payload, "repository", "full_name")),
        delivery_id=delivery_id,
        sender=_str(_get(payload, "sender", "login")),
        ref=ref,
        branch=branch,
        sha=_sha(event, payload),
        pr_number=_pr_number(payload),
        labels=_labels(payload),
        changed_paths=_changed_paths(payload),
        comment=_str(_get(payload, "comment", "body")) if event == "issue_comment" else None,
        installation_id=_int(_get(payload, "installation", "id")),
        payload=payload,
    )
