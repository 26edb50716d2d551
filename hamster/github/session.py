"""The github3 session: token auth, the API base URL, rate limits honoured, writes throttled.

This package is the only code that imports github3. Its calls block, so async code reaches them through
``asyncio.to_thread`` (see ``client.py``); the waits below therefore sleep a worker thread, never the loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import github3
from github3.session import GitHubSession

from hamster.errors import ConfigurationError
from hamster.github.rate_limit import Throttle, retry_delay
from hamster.settings import Settings

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


class RateLimitedSession(GitHubSession):  # type: ignore[misc]
    """A ``GitHubSession`` that waits out rate limits and spaces content-creating calls."""

    def __init__(self, throttle: Throttle, max_attempts: int = MAX_ATTEMPTS) -> None:
        super().__init__(default_connect_timeout=10, default_read_timeout=30)
        self.throttle = throttle
        self.max_attempts = max_attempts

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        attempt = 1
        while True:
            self.throttle.wait(method)
            response = super().request(method, url, *args, **kwargs)
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


def connect(settings: Settings) -> github3.GitHub:
    """A logged-in github3 client for this worker. It does not call GitHub until it is used."""
    if settings.github_api_token is None:
        raise ConfigurationError("HAMSTER_GITHUB_API_TOKEN: not set; Hamster needs a token to use GitHub")
    session = RateLimitedSession(Throttle(settings.github_write_interval_s))
    token = settings.github_api_token.get_secret_value()
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
