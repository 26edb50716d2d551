"""The github3 session: token or app-installation auth, the API base URL, rate limits honoured, writes
throttled.

This package is the only code that imports github3. Its calls block, so async code reaches them through
``asyncio.to_thread`` (see ``client.py``); the waits below therefore sleep a worker thread, never the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import github3
from github3.session import GitHubSession

from hamster.errors import ConfigurationError
from hamster.github.rate_limit import Throttle, retry_delay
from hamster.settings import Settings

if TYPE_CHECKING:
    from hamster.github.app import InstallationToken

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
MAX_ATTEMPTS = 6


def api_url(settings: Settings) -> str:
    """``HAMSTER_GITHUB_API_URL``, else GitHub Enterprise's ``https://<host>/api/v3``, else github.com's."""
    if settings.github_api_url:
        return settings.github_api_url.rstrip("/")
    if settings.github_host:
        return f"https://{settings.github_host}/api/v3"
    return DEFAULT_API_URL


class Response(Protocol):
    """What is read here of the ``requests.Response`` github3's session answers with."""

    status_code: int
    headers: Mapping[str, str]
    text: str


class RateLimitedSession(GitHubSession):  # type: ignore[misc]
    """A ``GitHubSession`` that waits out rate limits and spaces content-creating calls."""

    def __init__(self, throttle: Throttle, max_attempts: int = MAX_ATTEMPTS) -> None:
        super().__init__(default_connect_timeout=10, default_read_timeout=30)
        self.throttle = throttle
        self.max_attempts = max_attempts
        # The rate limit of this session's credentials as GitHub last reported it: (remaining, reset).
        self.rate: tuple[int, int] | None = None

    def _note_rate(self, response: Response) -> None:
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        if remaining is not None and remaining.isdigit() and reset is not None and reset.isdigit():
            self.rate = (int(remaining), int(reset))

    def before_send(self) -> None:
        """Called before each attempt of a call (a rate-limit wait may have outlasted a credential)."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        attempt = 1
        while True:
            self.throttle.wait(method)
            self.before_send()
            response: Response = super().request(method, url, *args, **kwargs)
            self._note_rate(response)
            if response.status_code < 400 or attempt >= self.max_attempts:
                return response
            wait = retry_delay(
                method, response.status_code, response.headers, response.text, attempt, time.time()
            )
            if wait is None:
                return response
            log.warning(
                "GitHub answered %s %s with %d; retrying in %.1f s (attempt %d)",
                method,
                url,
                response.status_code,
                wait,
                attempt + 1,
            )
            time.sleep(wait)
            attempt += 1


class InstallationSession(RateLimitedSession):
    """A session authenticated as one installation of the GitHub App, its token kept fresh.

    ``token()`` gives the installation's current token (renewed before it expires); ``renew(refused)`` a
    new one in place of a token GitHub answered 401 to (revoked, or expired early). That call is then made
    once more: the caller never sees the refusal.
    """

    def __init__(
        self,
        throttle: Throttle,
        token: Callable[[], InstallationToken],
        renew: Callable[[str], InstallationToken],
    ) -> None:
        super().__init__(throttle)
        self._token = token
        self._renew = renew
        self.use(token())  # github3's installation-only methods look at the auth before any request

    def use(self, token: InstallationToken) -> None:
        current = self.auth
        if current is None or getattr(current, "token", None) != token.token:
            self.app_installation_token_auth(token.as_github_json())

    def before_send(self) -> None:
        self.use(self._token())  # the cached token, or a new one when it is near its expiry

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 401:
            refused = getattr(self.auth, "token", "")
            log.warning("GitHub refused the installation token for %s %s: renewing it", method, url)
            self.use(self._renew(refused))
            response = super().request(method, url, *args, **kwargs)
        return response


def _client(settings: Settings, session: GitHubSession, token: str | None = None) -> github3.GitHub:
    client: github3.GitHub
    if settings.github_host:
        # verify=True: Enterprise is reached over HTTPS with its certificate checked, never without.
        client = github3.GitHubEnterprise(
            f"https://{settings.github_host}", token=token, verify=True, session=session
        )
    else:
        client = github3.GitHub(token=token, session=session)
    client.session.base_url = api_url(settings)
    return client


def app_client(settings: Settings) -> github3.GitHub:
    """A client without credentials, for the app's own calls (``app.py`` sets the JWT on it)."""
    return _client(settings, RateLimitedSession(Throttle(settings.github_write_interval_s)))


def installation_client(
    settings: Settings, token: Callable[[], InstallationToken], renew: Callable[[str], InstallationToken]
) -> github3.GitHub:
    """A client of one installation: its own session, so its own rate limit, waits and write spacing."""
    session = InstallationSession(Throttle(settings.github_write_interval_s), token, renew)
    return _client(settings, session)


def connect(settings: Settings) -> github3.GitHub:
    """A logged-in github3 client for this worker. It does not call GitHub until it is used."""
    if settings.github_api_token is None:
        raise ConfigurationError("HAMSTER_GITHUB_API_TOKEN: not set; Hamster needs a token to use GitHub")
    session = RateLimitedSession(Throttle(settings.github_write_interval_s))
    return _client(settings, session, settings.github_api_token.get_secret_value())
