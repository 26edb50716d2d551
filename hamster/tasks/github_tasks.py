"""Tasks that write to GitHub through the event's connected objects: comment, labels, assignees, merge.

A run of a fork's pull request that nobody vouched for (``ctx.trusted`` False, ``hamster.github.forks``) may
not write: each of these fails its stage, without retries.

Each is safe to run again (a retry, or a worker that died mid-stage): the comment is found by its marker and
edited rather than posted twice; labels and assignees are sets; a merge is checked first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hamster.errors import ConfigurationError
from hamster.execution.outcome import NonRetryable
from hamster.github.client import GitHubCallFailed
from hamster.github.reporting import comment_marker
from hamster.pipelines.context import TaskContext
from hamster.pipelines.task import Task, task

if TYPE_CHECKING:
    from hamster.github.objects import EventObjects

Body = str | Callable[[TaskContext], str]


class UntrustedRun(NonRetryable):
    """A task that writes to GitHub, in a run of a fork's pull request nobody vouched for (github.forks)."""


def _github(ctx: TaskContext) -> EventObjects:
    """The event's GitHub objects, to write to: refused in an untrusted run."""
    if not ctx.trusted:
        raise UntrustedRun(
            f"{ctx.stage}: this run of a fork's pull request may not write to GitHub; a person with write "
            "permission can comment /ok-to-test on the pull request"
        )
    if ctx.github is None:
        raise ConfigurationError(f"{ctx.stage}: this worker gives tasks no GitHub connection")
    return ctx.github


def render(body: Body, ctx: TaskContext) -> str:
    """The comment text: a function of ``ctx``, or a ``str.format`` template over the run's facts."""
    if callable(body):
        return str(body(ctx))
    return body.format(event=ctx.event, outputs=ctx.outputs, params=ctx.params, run_id=ctx.run_id)


def post_comment(ctx: TaskContext, body: Body) -> dict[str, Any]:
    issue = _github(ctx).require("issue")
    marker = comment_marker(ctx.run_id, ctx.stage)
    text = f"{render(body, ctx)}\n\n{marker}"
    for existing in issue.comments():
        if marker in (existing.body or ""):
            if existing.body != text and not existing.edit(text):
                raise GitHubCallFailed(f"{ctx.stage}: could not edit comment {existing.id}")
            return {"comment_id": existing.id, "url": existing.html_url, "edited": True}
    created = issue.create_comment(text)
    if created is None:
        raise GitHubCallFailed(f"{ctx.stage}: the comment was not created")
    return {"comment_id": created.id, "url": created.html_url, "edited": False}


def comment(body: Body, *, name: str = "comment", retries: int = 2) -> Task:
    """Comment on the event's issue or pull request. The body carries a hidden marker: Hamster ignores
    comments with it, so this never triggers a run of its own."""

    def run(ctx: TaskContext) -> dict[str, Any]:
        return post_comment(ctx, body)

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=retries)(run)


def add_labels(*labels: str, name: str = "add_labels") -> Task:
    if not labels:
        raise ConfigurationError(f"task {name}: give at least one label")

    def run(ctx: TaskContext) -> list[str]:
        added = _github(ctx).require("issue").add_labels(*labels)
        return sorted(label.name for label in added)

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=2)(run)


def remove_labels(*labels: str, name: str = "remove_labels") -> Task:
    if not labels:
        raise ConfigurationError(f"task {name}: give at least one label")

    def run(ctx: TaskContext) -> list[str]:
        issue = _github(ctx).require("issue")
        present = {label.name for label in issue.labels()}
        for label in labels:
            if label in present:  # removing an absent label is a 404 on GitHub
                issue.remove_label(label)
        return sorted(present - set(labels))

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=2)(run)


def assign(*users: str, name: str = "assign") -> Task:
    """Assign ``users`` (or, with none given, the event's sender) to the issue or pull request."""

    def run(ctx: TaskContext) -> list[str]:
        who = list(users) or ([ctx.event.sender] if ctx.event.sender else [])
        if not who:
            raise ConfigurationError(f"{ctx.stage}: nobody to assign")
        if not _github(ctx).require("issue").add_assignees(who):
            raise GitHubCallFailed(f"{ctx.stage}: could not assign {', '.join(who)}")
        return who

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=2)(run)


def merge(*, method: str = "merge", name: str = "merge") -> Task:
    """Merge the pull request at the event's head sha (opt-in: only pipelines that list it merge).

    The sha is passed to GitHub, so a pull request that received newer commits is not merged.
    """
    if method not in {"merge", "squash", "rebase"}:
        raise ConfigurationError(f"task {name}: method must be merge, squash or rebase")

    def run(ctx: TaskContext) -> dict[str, Any]:
        pull = _github(ctx).require("pull_request")
        if pull.is_merged():
            return {"merged": True, "already": True}
        if not pull.merge(sha=ctx.event.sha, merge_method=method):
            raise GitHubCallFailed(f"{ctx.stage}: GitHub refused to merge #{pull.number}")
        return {"merged": True, "already": False}

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=0)(run)
