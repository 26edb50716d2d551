"""What Hamster knows about GitHub's webhook events: their names, and the facts a pipeline filters on.

Everything here is pure: a payload in, facts out. Field locations follow GitHub's webhook reference,
https://docs.github.com/en/webhooks/webhook-events-and-payloads.
"""

from __future__ import annotations

import re
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
DEPLOYMENT_EVENTS = frozenset({"deployment", "deployment_status"})
TAG_PREFIX = "refs/tags/"
_FULL_SHA = re.compile(r"[0-9a-f]{40}\Z")


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
    deployment_id: int | None = None  # deployment and deployment_status: the deployment's id
    environment: str | None = None  # deployment and deployment_status: its environment
    deployment_task: str | None = None  # deployment and deployment_status: its task ("deploy", "deploy:…")
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


# Where events about a suite, a check or a workflow put the branch of the commit they are about. A check run
# has no head_branch of its own: its suite's is the one.
_HEAD_BRANCH = (
    ("check_suite", "head_branch"),
    ("check_run", "check_suite", "head_branch"),
    ("workflow_run", "head_branch"),
    ("workflow_job", "head_branch"),
)


# Where pull requests and their review events, suites, checks and workflows put the commit they are about.
_HEAD_SHA = (
    ("pull_request", "head", "sha"),
    ("check_suite", "head_sha"),
    ("check_run", "head_sha"),
    ("workflow_run", "head_sha"),
    ("workflow_job", "head_sha"),
)


def _ref_and_branch(event: str, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    if event in {"push", "workflow_dispatch", "code_scanning_alert", "schedule"}:
        return _full_ref(_str(payload.get("ref")))
    if event in {"create", "delete"}:
        ref = _str(payload.get("ref"))
        return ref, ref if payload.get("ref_type") == "branch" else None
    if event == "merge_group":
        # The group's own branch (gh-readonly-queue/<base>/pr-…) is the ref; the branch is the base it
        # merges into, as GitHub Actions' ``on: merge_group: branches`` filters.
        base_ref = _str(_get(payload, "merge_group", "base_ref"))
        head_ref = _str(_get(payload, "merge_group", "head_ref"))
        return head_ref, base_ref.removeprefix(BRANCH_PREFIX) if base_ref else None
    if event in DEPLOYMENT_EVENTS:
        return _deployment_ref(_str(_get(payload, "deployment", "ref")))
    if event == "repository_dispatch":
        # ``branch`` is the repository's default branch: the dispatch names no ref of its own.
        return _branch_ref(_str(payload.get("branch")))
    if event == "release":
        # A release is of a tag; its ``target_commitish`` only says where a tag not yet made is made from.
        tag = _str(_get(payload, "release", "tag_name"))
        return (TAG_PREFIX + tag if tag else None), None
    if event == "status":
        return _branch_ref(_status_branch(payload))
    base = _str(_get(payload, "pull_request", "base", "ref"))
    if base is not None:  # pull_request and its review events: the base branch
        return _str(_get(payload, "pull_request", "head", "ref")), base
    for path in _HEAD_BRANCH:
        head = _str(_get(payload, *path))
        if head:
            return _branch_ref(head)
    return None, None


def _full_ref(ref: str | None) -> tuple[str | None, str | None]:
    """A full ref and its branch: none for a tag (``refs/tags/``) or a pull request's ``refs/pull/``."""
    if not ref:
        return None, None
    return ref, ref[len(BRANCH_PREFIX) :] if ref.startswith(BRANCH_PREFIX) else None


def _branch_ref(branch: str | None) -> tuple[str | None, str | None]:
    return (BRANCH_PREFIX + branch, branch) if branch else (None, None)


def _status_branch(payload: dict[str, Any]) -> str | None:
    # ``branches`` lists up to 10 branches that *contain* the commit, which "may or may not be the head of
    # the branch" (https://docs.github.com/en/webhooks/webhook-events-and-payloads#status): the commit's
    # branch is one it is the head of; a commit deep in a branch's history has none.
    sha = _str(payload.get("sha"))
    branches = payload.get("branches")
    for item in branches if isinstance(branches, list) else ():
        if isinstance(item, dict) and sha and _get(item, "commit", "sha") == sha:
            return _str(item.get("name"))
    return None


def _deployment_ref(ref: str | None) -> tuple[str | None, str | None]:
    # A deployment's ref is "a branch, tag, or SHA" as its creator wrote it, usually a bare branch name
    # (https://docs.github.com/en/rest/deployments/deployments#create-a-deployment). A full sha or a
    # refs/tags/ ref is no branch; a bare tag name cannot be told from a branch name.
    if ref is None or _FULL_SHA.match(ref) or ref.startswith(TAG_PREFIX):
        return ref, None
    return ref, ref.removeprefix(BRANCH_PREFIX)


def _sha(event: str, payload: dict[str, Any]) -> str | None:
    if event == "push":
        after = _str(payload.get("after"))
        return None if after and set(after) == {"0"} else after  # a deleted branch has no head
    if event == "merge_group":
        return _str(_get(payload, "merge_group", "head_sha"))
    if event in DEPLOYMENT_EVENTS:
        return _str(_get(payload, "deployment", "sha"))
    if event in (
        "status",
        "workflow_dispatch",
    ):  # a manual run's (hamster.subscribers.dispatch); GitHub's have none
        return _str(payload.get("sha"))
    if event == "commit_comment":
        return _str(_get(payload, "comment", "commit_id"))
    if event == "page_build":
        return _str(_get(payload, "build", "commit"))
    if event == "code_scanning_alert":
        return _str(payload.get("commit_oid")) or None  # empty when a person closed the alert
    if event == "release":
        commitish = _str(_get(payload, "release", "target_commitish"))
        return commitish if commitish and _FULL_SHA.match(commitish) else None  # usually a branch name
    for path in _HEAD_SHA:
        sha = _str(_get(payload, *path))
        if sha:
            return sha
    return None


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
        deployment_id=_int(_get(payload, "deployment", "id")) if event in DEPLOYMENT_EVENTS else None,
        deployment_task=_str(_get(payload, "deployment", "task")) if event in DEPLOYMENT_EVENTS else None,
        environment=(
            _str(_get(payload, "deployment_status", "environment"))
            or _str(_get(payload, "deployment", "environment"))
            if event in DEPLOYMENT_EVENTS
            else None
        ),
        installation_id=_int(_get(payload, "installation", "id")),
        payload=payload,
    )
