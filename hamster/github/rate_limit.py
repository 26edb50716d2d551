"""When to wait and retry a GitHub API call, and how to space content-creating calls: pure decisions.

GitHub's rules (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api and
https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api):

- a ``Retry-After`` header says how many seconds to wait;
- a 403 or 429 with ``x-ratelimit-remaining: 0`` means the primary limit is spent until the epoch second in
  ``x-ratelimit-reset``;
- any other 429 (and a 403 whose body says "secondary rate limit") is a secondary limit: wait at least a
  minute, then back off exponentially;
- content-creating requests should be made serially, with at least a second between them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

SERVER_ERRORS = frozenset({500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def retry_delay(
    method: str,
    status: int,
    headers: Mapping[str, str],
    body: str,
    attempt: int,
    now: float,
    *,
    secondary_wait_s: float = 60.0,
    server_error_wait_s: float = 1.0,
    max_wait_s: float = 900.0,
) -> float | None:
    """Seconds to wait before retrying a call that got ``status`` on ``attempt`` (1, 2, …); None: don't.

    ``now`` is the epoch time, compared with ``x-ratelimit-reset``. A wait longer than ``max_wait_s`` is not
    worth holding a worker for: the call fails instead.
    """
    wait: float | None = None
    retry_after = _number(_header(headers, "Retry-After"))
    remaining = _number(_header(headers, "X-RateLimit-Remaining"))
    if status in {403, 429} and retry_after is not None:
        wait = retry_after
    elif status in {403, 429} and remaining == 0:
        reset = _number(_header(headers, "X-RateLimit-Reset"))
        # The reset time is a whole epoch second; a little margin avoids arriving just before it.
        wait = max(0.0, (reset or now) - now) + 0.5
    elif status == 429 or (status == 403 and "secondary rate limit" in body.lower()):
        wait = secondary_wait_s * 2 ** (attempt - 1)
    elif status in SERVER_ERRORS and method.upper() in IDEMPOTENT and attempt < 4:
        # A POST that got a 500 may have been carried out: repeating it could post twice.
        wait = server_error_wait_s * 2 ** (attempt - 1)
    if wait is None or wait > max_wait_s:
        return None
    return wait


class Throttle:
    """Spaces content-creating calls ``interval_s`` apart, across every thread of this worker."""

    def __init__(
        self,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last: float | None = None

    def wait(self, method: str) -> float:
        """Block until a ``method`` call may go out; returns the seconds waited."""
        if method.upper() not in WRITES or self.interval_s <= 0:
            return 0.0
        with self._lock:  # held while sleeping, so writes leave one at a time
            waited = 0.0
            if self._last is not None:
                waited = max(0.0, self._last + self.interval_s - self._clock())
                if waited:
                    self._sleep(waited)
            self._last = self._clock()
            return waited
