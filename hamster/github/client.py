"""``GitHubClient``: one github3 session per worker (per installation, with an app), and the few calls
reporting makes, awaitable.

Everything github3 does blocks on HTTP, so every coroutine here hands its work to a thread
(``asyncio.to_thread``) and the event loop, with Faust's heartbeats, keeps running.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import github3
from github3.repos.repo import Repository

from hamster.errors import ConfigurationError, HamsterError
from hamster.github.app import GitHubApp
from hamster.github.session import app_client, connect, installation_client
from hamster.intake.github_events import EventInfo
from hamster.settings import Settings

T = TypeVar("T")
P = ParamSpec("P")
REPOSITORY_CACHE = 256


class GitHubCallFailed(HamsterError):
    """GitHub refused or failed a call (after any rate-limit waits). Carries no credentials."""

    retryable = True


def _split(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.partition("/")
    if not owner or not name:
        raise GitHubCallFailed(f"not an owner/name repository: {full_name!r}")
    return owner, name


class _Connections:
    """What every view of one worker's ``GitHubClient`` shares: the logged-in clients (one per
    installation of the app, or the one of the personal token), their repositories, the app's tokens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.clients: dict[int | None, github3.GitHub] = {}
        self.repositories: OrderedDict[tuple[int | None, str], Repository] = OrderedDict()
        self.app: GitHubApp | None = None

    def github_app(self) -> GitHubApp:
        with self.lock:
            if self.app is None:
                self.app = GitHubApp(self.settings, lambda: app_client(self.settings))
            return self.app


class GitHubClient:
    """The worker's GitHub connection, made on first use and shared by every task and agent.

    With a GitHub App (``HAMSTER_GITHUB_APP_ID``), each call goes out as one installation of the app:
    the view's ``installation`` (from the webhook, see ``for_event``), else the installation of the
    repository called on, looked up once. Without an app, every call uses the personal token.
    """

    def __init__(
        self, settings: Settings, installation: int | None = None, *, _shared: _Connections | None = None
    ) -> None:
        self.settings = settings
        self.installation = installation
        self._shared = _shared or _Connections(settings)

    def for_installation(self, installation: int | None) -> GitHubClient:
        """A view of this client calling GitHub as ``installation`` (None: the repository's own)."""
        return GitHubClient(self.settings, installation, _shared=self._shared)

    def for_event(self, event: EventInfo) -> GitHubClient:
        return self.for_installation(event.installation_id)

    def _same_process(self) -> _Connections:
        # Blocking tasks may run in a forked child (hamster.execution.outcome). A lock another thread held at
        # the fork stays held forever in the child, and a pooled connection must not be shared: start afresh.
        if self._shared.pid != os.getpid():
            self._shared = _Connections(self.settings)
        return self._shared

    @property
    def configured(self) -> bool:
        return self.settings.github_api_token is not None or self.settings.github_app

    def installation_for(self, repo: str | None) -> int | None:
        """The installation calls about ``repo`` go out as (None without an app)."""
        if not self.settings.github_app:
            return None
        if self.installation is not None:
            return self.installation
        if not repo:
            raise ConfigurationError(
                "GitHub App: this call names no repository and its event no installation"
            )
        return self._same_process().github_app().installation_for(repo)

    def client_for(self, repo: str | None = None) -> github3.GitHub:
        """The logged-in github3 client (blocking API) for calls about ``repo``."""
        shared = self._same_process()
        installation = self.installation_for(repo)
        with shared.lock:
            client = shared.clients.get(installation)
        if client is not None:
            return client
        if installation is None:
            client = connect(self.settings)
        else:
            app = shared.github_app()
            client = installation_client(
                self.settings,
                lambda: app.token(installation),
                lambda refused: app.renew(installation, refused),
            )
        with shared.lock:
            return shared.clients.setdefault(installation, client)

    @property
    def github(self) -> github3.GitHub:
        """The logged-in github3 client of this view's installation (or of the personal token)."""
        return self.client_for(None)

    def git_token(self, repo: str | None) -> str | None:
        """The token ``git`` uses over https for ``repo``: the installation's, or the personal token."""
        installation = self.installation_for(repo)
        if installation is None:
            token = self.settings.github_api_token
            return token.get_secret_value() if token is not None else None
        return self._same_process().github_app().token(installation).token

    def rate_limits(self) -> dict[int | None, tuple[int, int]]:
        """The rate limit left per installation (None: the personal token): (remaining, reset epoch)."""
        shared = self._same_process()
        with shared.lock:
            clients = dict(shared.clients)
        return {key: c.session.rate for key, c in clients.items() if getattr(c.session, "rate", None)}

    def repository(self, full_name: str) -> Repository:
        """The repository, fetched once per worker and installation and kept (a few hundred at most)."""
        shared = self._same_process()
        key = (self.installation_for(full_name), full_name)
        with shared.lock:
            cached = shared.repositories.get(key)
            if cached is not None:
                shared.repositories.move_to_end(key)
                return cached
        repo = self.client_for(full_name).repository(*_split(full_name))
        if repo is None:
            raise GitHubCallFailed(f"repository {full_name} not found (or the token cannot see it)")
        with shared.lock:
            shared.repositories[key] = repo
            while len(shared.repositories) > REPOSITORY_CACHE:
                shared.repositories.popitem(last=False)
        return repo

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
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

    def create_check_run(self, repo: str, sha: str, name: str, **fields: object) -> int:
        """Create a check run. GitHub accepts this from a GitHub App's installation only
        (https://docs.github.com/en/rest/checks/runs#create-a-check-run)."""
        repository = self.repository(repo)
        if self.settings.github_app:
            check = repository.create_check_run(name, sha, **fields)
        else:
            # github3 refuses before asking GitHub; asking lets GitHub's own answer (a 403 on github.com,
            # maybe not on an old Enterprise Server) decide, and the log say why.
            check = Repository.create_check_run.__wrapped__(repository, name, sha, **fields)
        if check is None:
            raise GitHubCallFailed(f"{repo}@{sha[:7]}: check run {name} was not created")
        return int(check.id)

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """The check runs on ``sha`` as GitHub describes them (``id``, ``name``, ``external_id``, ``app``)."""
        commit = self.repository(repo).commit(sha)
        return [] if commit is None else [check.as_dict() for check in commit.check_runs()]

    def update_check_run(self, repo: str, check_id: int, **fields: object) -> None:
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

    def commit_sha(self, repo: str, ref: str) -> str:
        """The commit ``ref`` (a branch, tag or sha) points at now
        (https://docs.github.com/en/rest/commits/commits#get-a-commit)."""
        repository = self.repository(repo)
        url = repository._build_url("commits", ref, base_url=repository._api)
        response = repository._get(url, headers=_REST_HEADERS)
        if response.status_code != 200:
            raise GitHubCallFailed(f"{repo}: no commit for {ref!r} (GitHub answered {response.status_code})")
        return str(response.json()["sha"])

    def pull_request_json(self, repo: str, number: int) -> dict[str, Any]:
        """Pull request ``number`` as GitHub gives it now, its head included
        (https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request)."""
        repository = self.repository(repo)
        url = repository._build_url("pulls", str(number), base_url=repository._api)
        response = repository._get(url, headers=_REST_HEADERS)
        if response.status_code != 200:
            raise GitHubCallFailed(f"{repo}#{number}: the pull request answered {response.status_code}")
        found: dict[str, Any] = response.json()
        return found

    def comment(self, repo: str, number: int, body: str) -> None:
        """Comment on issue or pull request ``number``."""
        issue = self.repository(repo).issue(number)
        if issue is None or issue.create_comment(body) is None:
            raise GitHubCallFailed(f"{repo}#{number}: the comment was not created")

    def permission(self, repo: str, user: str) -> str:
        """``user``'s permission on ``repo``: admin, write, read or none
        (https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user)."""
        repository = self.repository(repo)
        url = repository._build_url("collaborators", user, "permission", base_url=repository._api)
        response = repository._get(url, headers=_REST_HEADERS)
        if response.status_code == 404:
            return "none"  # no such user
        if response.status_code != 200:
            raise GitHubCallFailed(f"{repo}: permission of {user} answered {response.status_code}")
        return str(response.json().get("permission") or "none")


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
