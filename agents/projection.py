"""Agent: project the run log into SQL (runs and stages), idempotently, off the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from hamster.projection import apply_batch
from hamster.run_events import RunEvent, decode_run_event
from streams.app import Streams

log = logging.getLogger(__name__)


def register(streams: Streams, engine: Engine) -> None:
    topic_name = streams.run_events.get_topic_name()

    @streams.app.agent(streams.run_events, name="hamster.projection", concurrency=1)
    async def project(stream: Any) -> None:
        async for events in stream.take_events(100, within=0.05):
            batch: list[tuple[int, int, RunEvent]] = []
            for event in events:
                try:
                    batch.append(
                        (event.message.partition, event.message.offset, decode_run_event(event.value))
                    )
                except (ValidationError, ValueError) as exc:
                    log.error(
                        "projection: undecodable record %s/%s: %s",
                        event.message.partition,
                        event.message.offset,
                        exc,
                    )
            if batch:
                await asyncio.to_thread(apply_batch, engine, topic_name, batch)
