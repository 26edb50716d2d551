"""``GitHubClient``: one github3 session per worker, and the few calls reporting makes, awaitable.

Everything github3 does blocks on HTTP, so every coroutine here hands its work to a thread
(``asyncio.to_thread``) and the event loop, with Faust's heartbeats, keeps running.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import github3
from github3.repos.repo import Repository

from hamster.errors import HamsterError
from hamster.github.session import connect
from hamster.settings import Settings

T = TypeVar("T")
REPOSITORY_CACHE = 256


class GitHubCallFailed(HamsterError):
    """GitHub refused or failed a call (after any rate-limit waits). Carries no credentials."""

    retryable = True


def _split(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.partition("/")
    if not owner or not name:
        raise GitHubCallFailed(f"not an owner/name repository: {full_name!r}")
    return owner, name


class GitHubClient:
    """The worker's GitHub connection, made on first use and shared by every task and agent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._client: github3.GitHub | None = None
        self._repositories: OrderedDict[str, Repository] = OrderedDict()

    def _same_process(self) -> None:
        # Blocking tasks may run in a forked child (hamster.execution). A lock another thread held at the
        # fork stays held forever in the child, and a pooled connection must not be shared: start afresh.
        if self._pid != os.getpid():
            self._start()

    @property
    def configured(self) -> bool:
        return self.settings.github_api_token is not None

    @property
    def github(self) -> github3.GitHub:
        """The logged-in github3 client (blocking API)."""
        self._same_process()
        with self._lock:
            if self._client is None:
                self._client = connect(self.settings)
            return self._client

    def repository(self, full_name: str) -> Repository:
        """The repository, fetched once per worker and kept (a few hundred at most)."""
        self._same_process()
        with self._lock:
            cached = self._repositories.get(full_name)
            if cached is not None:
                self._repositories.move_to_end(full_name)
                return cached
        repo = self.github.repository(*_split(full_name))
        if repo is None:
            raise GitHubCallFailed(f"repository {full_name} not found (or the token cannot see it)")
        with self._lock:
            self._repositories[full_name] = repo
            while len(self._repositories) > REPOSITORY_CACHE:
                self._repositories.popitem(last=False)
        return repo

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking github3 call in a thread; GitHub's own errors become ``GitHubCallFailed``."""

        def run() -> T:
            try:
                return fn(*args, **kwargs)
            except github3.exceptions.GitHubException as exc:
                raise GitHubCallFailed(f"GitHub: {exc}") from None

        return await asyncio.to_thread(run)

    # The calls reporting makes.
    def create_status(
        self, repo: str, sha: str, state: str, context: str, description: str, target_url: str | None
    ) -> None:
        status = self.repository(repo).create_status(
            sha, state, target_url=target_url, description=description, context=context
        )
        if status is None:
            raise GitHubCallFailed(f"{repo}@{sha[:7]}: status {state} was not created")

    def find_check_run(self, repo: str, sha: str, name: str, external_id: str) -> int | None:
        """The check run this run already made, if any: what makes a repeated ``start_check`` harmless."""
        commit = self.repository(repo).commit(sha)
        if commit is None:
            return None
        for check in commit.check_runs():
            if check.name == name and check.external_id == external_id:
                return int(check.id)
        return None

    def create_check_run(self, repo: str, sha: str, name: str, **fields: Any) -> int:
        repository = self.repository(repo)
        # github3 only allows check runs under GitHub App installation auth; the REST API also accepts a
        # token that has the permission, so the undecorated method is called.
        create = Repository.create_check_run.__wrapped__
        check = create(repository, name, sha, **fields)
        if check is None:
            raise GitHubCallFailed(f"{repo}@{sha[:7]}: check run {name} was not created")
        return int(check.id)

    def update_check_run(self, repo: str, check_id: int, **fields: Any) -> None:
        repository = self.repository(repo)
        url = repository._build_url("check-runs", str(check_id), base_url=repository._api)
        body = {key: value for key, value in fields.items() if value is not None}
        response = repository._patch(url, json=body, headers=_REST_HEADERS)
        if response.status_code != 200:
            raise GitHubCallFailed(f"{repo}: check run {check_id} update answered {response.status_code}")

    def create_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        state: str,
        description: str,
        log_url: str | None,
        environment_url: str | None = None,
    ) -> None:
        """One status of the deployment (https://docs.github.com/en/rest/deployments/statuses).

        github3's ``Deployment.create_status`` sends only the legacy ``target_url``: the status is posted
        here with ``log_url`` (GitHub copies it to ``target_url``) and ``environment_url``. A field without
        a value is left out: GitHub refuses ``null`` for these strings.
        """
        repository = self.repository(repo)
        url = repository._build_url("deployments", str(deployment_id), "statuses", base_url=repository._api)
        fields = {"log_url": log_url, "environment_url": environment_url}
        body = {"state": state, "description": description}
        body.update({key: value for key, value in fields.items() if value is not None})
        response = repository._post(url, data=body, headers=_REST_HEADERS)
        if response.status_code != 201:
            raise GitHubCallFailed(
                f"{repo}: deployment {deployment_id} status {state} answered {response.status_code}"
            )


_REST_HEADERS = {"Accept": "application/vnd.github+json"}

_clients: dict[int, GitHubClient] = {}
_clients_lock = threading.Lock()


def client_for(settings: Settings) -> GitHubClient:
    """The one client of this worker for these settings (a login per worker, not per call)."""
    with _clients_lock:
        client = _clients.get(id(settings))
        if client is None or client.settings is not settings:
            client = _clients[id(settings)] = GitHubClient(settings)
        return client
