"""``ctx.github``: the event's connected github3 objects, fetched on first use, at most once per stage.

The properties block (github3 is synchronous). Plain ``def`` tasks run in a worker thread, so they use them
directly; ``async def`` tasks should ``await ctx.github.load("pull_request")`` instead.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Literal, TypeAlias, TypeVar, cast, get_args, overload

import github3
from github3.issues.issue import Issue
from github3.pulls import PullRequest
from github3.repos.commit import RepoCommit
from github3.repos.repo import Repository

from hamster.github.client import GitHubCallFailed, GitHubClient
from hamster.intake.github_events import EventInfo
from hamster.settings import Settings

Name = Literal["repository", "pull_request", "issue", "commit"]
OBJECTS: tuple[Name, ...] = get_args(Name)
GitHubObject: TypeAlias = Repository | PullRequest | Issue | RepoCommit
T = TypeVar("T")


class EventObjects:
    """The connected objects of one event, for one stage: ``repository``, ``pull_request``, ``issue``,
    ``commit`` (``None`` where the event has no such thing) and ``client``."""

    def __init__(self, client: GitHubClient, event: EventInfo) -> None:
        # With a GitHub App, everything goes out as the installation the webhook came through.
        self._github = client.for_event(event)
        self._event = event
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._loaded: dict[str, object] = {}

    @property
    def settings(self) -> Settings:
        """The worker's settings (where workspaces, keys and logs live)."""
        return self._github.settings

    @property
    def client(self) -> github3.GitHub:
        """The logged-in github3 client (the event's installation's, with an app), for anything the
        properties below do not cover."""
        return self._github.client_for(self._event.repo)

    @property
    def connection(self) -> GitHubClient:
        return self._github

    def git_token(self) -> str | None:
        """The token ``checkout`` gives git over https: the installation's (short-lived), or the personal
        token. It goes to git through its environment only, never into a file."""
        return self._github.git_token(self._event.repo)

    def _once(self, name: str, fetch: Callable[[], T]) -> T:
        if (
            self._pid != os.getpid()
        ):  # a forked child (hamster.execution.outcome): locks held at the fork stay held
            self._lock, self._pid = threading.RLock(), os.getpid()
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = fetch()
            return cast(T, self._loaded[name])  # what ``fetch`` of this name returned

    @property
    def repository(self) -> Repository | None:
        repo = self._event.repo
        return self._once("repository", lambda: self._github.repository(repo) if repo else None)

    def _number(self) -> int | None:
        number = self._event.pr_number
        if number is None:
            issue = self._event.payload.get("issue")
            if isinstance(issue, dict) and isinstance(issue.get("number"), int):
                number = int(issue["number"])
        return number

    @property
    def pull_request(self) -> PullRequest | None:
        def fetch() -> PullRequest | None:
            repo, number = self.repository, self._event.pr_number
            return repo.pull_request(number) if repo is not None and number is not None else None

        return self._once("pull_request", fetch)

    @property
    def issue(self) -> Issue | None:
        """The issue, or the pull request's issue (where comments, labels and assignees live)."""

        def fetch() -> Issue | None:
            repo, number = self.repository, self._number()
            return repo.issue(number) if repo is not None and number is not None else None

        return self._once("issue", fetch)

    @property
    def commit(self) -> RepoCommit | None:
        def fetch() -> RepoCommit | None:
            repo, sha = self.repository, self._event.sha
            return repo.commit(sha) if repo is not None and sha else None

        return self._once("commit", fetch)

    @overload
    def require(self, name: Literal["repository"]) -> Repository: ...
    @overload
    def require(self, name: Literal["pull_request"]) -> PullRequest: ...
    @overload
    def require(self, name: Literal["issue"]) -> Issue: ...
    @overload
    def require(self, name: Literal["commit"]) -> RepoCommit: ...
    def require(self, name: Name) -> GitHubObject:
        """The object ``name``, or a clear error saying the event has none."""
        value: GitHubObject | None = getattr(self, name)
        if value is None:
            raise GitHubCallFailed(f"event {self._event.name} ({self._event.repo}) has no {name}")
        return value

    @overload
    async def load(self, name: Literal["repository"]) -> Repository | None: ...
    @overload
    async def load(self, name: Literal["pull_request"]) -> PullRequest | None: ...
    @overload
    async def load(self, name: Literal["issue"]) -> Issue | None: ...
    @overload
    async def load(self, name: Literal["commit"]) -> RepoCommit | None: ...
    async def load(self, name: str) -> GitHubObject | None:
        """``await ctx.github.load("pull_request")``: the property, fetched off the event loop."""
        if name not in OBJECTS:
            raise ValueError(f"expected one of {', '.join(OBJECTS)}, got {name!r}")
        return await asyncio.to_thread(getattr, self, name)
