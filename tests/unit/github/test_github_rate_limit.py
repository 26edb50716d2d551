"""The rate-limit rules: when a GitHub answer is waited out, for how long, and how writes are spaced."""

from __future__ import annotations

from hamster.github.rate_limit import Throttle, retry_delay

NOW = 1_700_000_000.0


def test_primary_limit_waits_until_reset():
    """A 403 with x-ratelimit-remaining 0 waits until x-ratelimit-reset (plus a margin)."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 30)}
    assert retry_delay("GET", 403, headers, "", 1, NOW) == 30.5


def test_retry_after_is_obeyed():
    """A Retry-After header says how long to wait, on 403 and 429 alike."""
    assert retry_delay("POST", 429, {"retry-after": "7"}, "", 1, NOW) == 7.0
    assert retry_delay("POST", 403, {"Retry-After": "3"}, "", 1, NOW) == 3.0


def test_secondary_limit_backs_off_exponentially():
    """A secondary limit without headers waits a minute, then doubles."""
    body = '{"message": "You have exceeded a secondary rate limit"}'
    assert retry_delay("POST", 403, {}, body, 1, NOW) == 60.0
    assert retry_delay("POST", 429, {}, "", 2, NOW) == 120.0


def test_plain_forbidden_is_not_retried():
    """A 403 that is not a rate limit (no permission) fails at once."""
    headers = {"X-RateLimit-Remaining": "4000"}
    assert retry_delay("GET", 403, headers, "Resource not accessible", 1, NOW) is None


def test_server_errors_retry_only_idempotent_calls():
    """A 500 is retried for GET but not for POST, which may have been carried out."""
    assert retry_delay("GET", 500, {}, "", 1, NOW) == 1.0
    assert retry_delay("POST", 500, {}, "", 1, NOW) is None
    assert retry_delay("GET", 502, {}, "", 4, NOW) is None


def test_waits_past_the_cap_give_up():
    """A reset an hour away is not waited for."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 3600)}
    assert retry_delay("GET", 403, headers, "", 1, NOW) is None


def test_throttle_spaces_writes_not_reads():
    """Content-creating calls wait for the interval since the last one; reads never wait."""
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    throttle = Throttle(1.0, clock=lambda: clock[0], sleep=sleep)
    assert throttle.wait("POST") == 0.0
    clock[0] += 0.25
    assert throttle.wait("GET") == 0.0
    assert throttle.wait("PATCH") == 0.75
    clock[0] += 5
    assert throttle.wait("POST") == 0.0
    assert slept == [0.75]
