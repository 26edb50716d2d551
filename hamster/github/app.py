"""GitHub App authentication: the app's JWT, its installations' tokens (cached, renewed), installations found.

GitHub's rules, which the pure functions at the top follow:

- the app authenticates with a JWT signed RS256 with its private key: ``iss`` the app id, ``iat`` a minute
  in the past (clocks drift), ``exp`` at most ten minutes after it is made
  (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app);
- with it, ``POST /app/installations/{id}/access_tokens`` gives an installation token that expires after an
  hour (``expires_at``), and ``GET /repos/{owner}/{repo}/installation`` names the installation of a
  repository
  (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation).

``GitHubApp`` holds one worker's tokens, one per installation, and renews a token some minutes before it
expires, or at once when GitHub refused it (``renew``). Its calls block: callers are in threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import github3
import jwt
from github3 import apps

from hamster.errors import ConfigurationError, HamsterError
from hamster.github.session import app_client
from hamster.settings import Settings

log = logging.getLogger(__name__)

JWT_BACKDATE_S = 60  # GitHub's advice against clock drift
JWT_LIFETIME_S = 9 * 60  # from now; with the backdating, 10 minutes from iat: GitHub's limit
RENEW_BEFORE_S = 5 * 60  # a token this close to its expiry is renewed before it is used


class AppAuthFailed(HamsterError):
    """GitHub did not give the app a token (or an installation). Carries no credentials."""

    retryable = True


# Pure rules.
def jwt_claims(app_id: int, now: float) -> dict[str, Any]:
    issued = int(now) - JWT_BACKDATE_S
    return {"iat": issued, "exp": int(now) + JWT_LIFETIME_S, "iss": str(app_id)}


@dataclass(frozen=True)
class InstallationToken:
    installation_id: int
    token: str
    expires_at: datetime

    def __repr__(self) -> str:  # never the token itself, in a log or a traceback
        return f"InstallationToken({self.installation_id}, expires_at={self.expires_at.isoformat()})"

    def usable(self, now: datetime, margin_s: float = RENEW_BEFORE_S) -> bool:
        """True while the token has more than ``margin_s`` left: a call made now will not outlive it."""
        return (self.expires_at - now).total_seconds() > margin_s

    def as_github_json(self) -> dict[str, str]:
        """The token as GitHub answered it (what github3's installation auth is made from)."""
        return {"token": self.token, "expires_at": self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def parse_token(installation_id: int, body: Mapping[str, Any]) -> InstallationToken:
    token, expires = body.get("token"), body.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires, str):
        raise AppAuthFailed(f"installation {installation_id}: GitHub's token answer has no token/expires_at")
    expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    return InstallationToken(installation_id, token, expires_at)


def private_key(settings: Settings) -> bytes:
    path = settings.github_app_key
    if path is None:
        raise ConfigurationError("HAMSTER_GITHUB_APP_KEY: not set")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"HAMSTER_GITHUB_APP_KEY: cannot read {path}: {exc.strerror}") from None
    if b"PRIVATE KEY" not in pem:
        raise ConfigurationError(f"HAMSTER_GITHUB_APP_KEY: {path} is not a PEM private key")
    return pem


class GitHubApp:
    """The app's credentials, and one token per installation, for one worker process.

    ``new_client`` makes an unauthenticated github3 client on the rate-limited session (``session.py``).
    """

    def __init__(
        self,
        settings: Settings,
        new_client: Callable[[], github3.GitHub],
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert settings.github_app_id is not None
        self.app_id = settings.github_app_id
        self._key = private_key(settings)
        self._new_client = new_client
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[int, InstallationToken] = {}
        self._installations: dict[str, int] = {}  # repository → installation id
        self._bearer: tuple[float, github3.GitHub] | None = None

    def jwt(self) -> str:
        return jwt.encode(jwt_claims(self.app_id, self._clock()), self._key, algorithm="RS256")

    def _as_app(self) -> github3.GitHub:
        """A github3 client authenticated as the app, with a JWT renewed a minute before it expires."""
        now = self._clock()
        if self._bearer is None or self._bearer[0] - now < 60:
            client = self._new_client()
            client.session.app_bearer_token_auth(self.jwt(), JWT_LIFETIME_S)
            self._bearer = (now + JWT_LIFETIME_S, client)
        return self._bearer[1]

    def token(self, installation_id: int) -> InstallationToken:
        """The installation's token: the cached one while usable, else a new one from GitHub."""
        with self._lock:  # one request for a new token at a time, not one per waiting thread
            now = datetime.fromtimestamp(self._clock(), UTC)
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.usable(now):
                return cached
            client = self._as_app()
            url = client._build_url("app", "installations", str(installation_id), "access_tokens")
            response = client._post(url, headers=apps.APP_PREVIEW_HEADERS)
            if response is None or response.status_code != 201:
                status = getattr(response, "status_code", "no answer")
                raise AppAuthFailed(f"installation {installation_id}: GitHub refused a token ({status})")
            fresh = parse_token(installation_id, response.json())
            self._tokens[installation_id] = fresh
            log.info(
                "GitHub App %d: installation %d has a new token until %s",
                self.app_id,
                installation_id,
                fresh.expires_at.isoformat(),
            )
            return fresh

    def renew(self, installation_id: int, refused: str) -> InstallationToken:
        """A new token in place of ``refused`` (GitHub answered 401): unless another thread renewed it."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.token != refused:
                return cached
            self._tokens.pop(installation_id, None)
        return self.token(installation_id)

    def installation_for(self, repo: str) -> int:
        """The installation of the app on ``owner/name`` (for runs whose webhook named none)."""
        with self._lock:
            known = self._installations.get(repo)
            if known is not None:
                return known
            owner, _, name = repo.partition("/")
            try:
                found = self._as_app().app_installation_for_repository(owner, name)
            except github3.exceptions.GitHubException as exc:
                raise AppAuthFailed(f"{repo}: no installation of app {self.app_id} found ({exc})") from None
            if found is None:
                raise AppAuthFailed(f"{repo}: the app {self.app_id} is not installed there")
            self._installations[repo] = int(found.id)
            return int(found.id)


def convert_manifest(settings: Settings, code: str) -> dict[str, Any]:
    """Exchange the code GitHub gave after creating an app from Hamster's manifest for the app's id,
    private key (``pem``) and ``webhook_secret`` (``POST /app-manifests/{code}/conversions``, no auth)."""
    client = app_client(settings)
    url = client._build_url("app-manifests", code, "conversions")
    try:
        response = client._post(url)
    except github3.exceptions.GitHubException as exc:
        raise AppAuthFailed(f"GitHub did not convert the manifest code: {exc}") from None
    if response is None or response.status_code != 201:
        status = getattr(response, "status_code", "no answer")
        raise AppAuthFailed(
            f"GitHub did not convert the manifest code ({status}): codes are good for an hour, and once"
        )
    body: dict[str, Any] = response.json()
    return body
