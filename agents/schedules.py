"""Agent: announce schedule ticks. Every worker announces every tick of its subscribers' schedules, on each
of their repositories and branches, as a ``schedule`` event on the events topic; the delivery id is the
same from every worker (``hamster.subscribers.dispatch``), so the match agent's redelivery filter starts one
run per tick. What to announce is decided by ``hamster.subscribers.schedules``; this loop only writes it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from mode import Service

from hamster.intake.envelope import encode_envelope
from hamster.subscribers.dispatch import schedule_event
from hamster.subscribers.schedules import first_round, ticks
from hamster.subscribers.spec import Subscriber
from streams.app import Streams, send_acked

log = logging.getLogger(__name__)

EVERY_S = 1.0


class Scheduler(Service):
    def __init__(self, streams: Streams, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.streams = streams
        self.scheduled = [s for s in streams.catalog.subscribers if s.spec.schedule]

    async def on_start(self) -> None:
        if self.scheduled:
            self.add_future(self._announce_ticks())

    async def _announce_ticks(self) -> None:
        settings = self.streams.settings
        started = datetime.now(UTC)
        log.info("scheduler: %d schedule(s), catching up from %s", len(self.scheduled), started.isoformat())
        last: datetime | None = None
        while not self.should_stop:
            now = datetime.now(UTC)
            try:
                for sub in self.scheduled:
                    cron = cast(str, sub.spec.schedule)
                    due = (
                        first_round(
                            cron,
                            now,
                            started,
                            settings.schedule_catch_up,
                            settings.schedule_catch_up_s,
                            timedelta(days=settings.redelivery_window_days),
                        )
                        if last is None
                        else ticks(cron, last, now)
                    )
                    for tick in due:
                        await self.announce(sub, cron, tick)
                last = now
            except Exception:  # Kafka unreachable: the same ticks are due again next round
                log.exception("scheduler: ticks not announced; trying again")
            await asyncio.sleep(EVERY_S)

    async def announce(self, sub: Subscriber, cron: str, tick: datetime) -> None:
        for repo in sub.spec.repos or ():
            for branch in sub.spec.branches or ():
                envelope = schedule_event(sub.name, repo, branch, tick, cron)
                await send_acked(self.streams.events, envelope.key, encode_envelope(envelope))
                log.info("schedule %s: tick %s on %s %s announced", sub.name, tick.isoformat(), repo, branch)


def register(streams: Streams) -> None:
    streams.app.service(cast(Any, Scheduler(streams)))
