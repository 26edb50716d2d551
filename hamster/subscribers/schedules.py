"""Schedules: which ticks of a subscriber's cron schedule a worker's scheduler announces. Pure.

Every worker runs the scheduler (``agents.schedules``) and announces every tick itself: a ``schedule``
event per subscriber, repository and branch, whose delivery id is derived from them and the tick
(``hamster.subscribers.dispatch``). The match agent's redelivery filter lets the first copy through and drops
the others, so a tick starts one run however many workers announce it, and a worker that restarts may announce
recent ticks again without starting them twice. Ticks missed while no worker ran are caught up when a
worker starts: the latest ``catch_up`` of them at most, from no further back than ``catch_up_s``, and
never older than what the redelivery filter remembers (else one could run twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter

from hamster.errors import ConfigurationError

FILTER_MARGIN = timedelta(hours=1)  # ticks this close to the redelivery filter's horizon are not caught up


def check(cron: str, subscriber: str) -> str:
    """``cron`` if croniter reads it (five fields, or six with seconds last); else a ConfigurationError."""
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ConfigurationError(f"subscriber {subscriber}: schedule {cron!r} is not a cron expression")
    return cron


def ticks(cron: str, after: datetime, until: datetime, limit: int = 10_000) -> list[datetime]:
    """The ticks of ``cron`` in (``after``, ``until``], oldest first (at most ``limit``, the earliest)."""
    it = croniter(cron, after)
    found: list[datetime] = []
    while len(found) < limit and (tick := it.get_next(datetime)) <= until:
        found.append(tick)
    return found


def latest(cron: str, after: datetime, until: datetime, count: int) -> list[datetime]:
    """The latest ``count`` ticks of ``cron`` in (``after``, ``until``], oldest first."""
    # Walk back from ``until``: a fast schedule has many ticks in a long window.
    it = croniter(cron, until + timedelta(microseconds=1))
    found: list[datetime] = []
    while len(found) < count and (tick := it.get_prev(datetime)) > after:
        found.append(tick)
    return found[::-1]


def first_round(
    cron: str,
    now: datetime,
    started: datetime,
    catch_up: int,
    catch_up_s: float,
    redelivery_window: timedelta,
) -> list[datetime]:
    """What a scheduler announces the first time: the ticks it missed before ``started`` (the latest
    ``catch_up`` from the last ``catch_up_s``, within the redelivery filter's memory) and those since."""
    horizon = max(started - timedelta(seconds=catch_up_s), now - redelivery_window + FILTER_MARGIN)
    missed = latest(cron, horizon, started, catch_up) if horizon < started else []
    return missed + ticks(cron, started, now)
