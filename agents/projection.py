"""Agent: project the run log into SQL (runs and stages), idempotently, off the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from agents.dead_letters import set_aside
from hamster.projection import apply_batch
from hamster.run_events import RunEvent, decode_run_event
from streams.app import Streams

log = logging.getLogger(__name__)


def register(streams: Streams, engine: Engine) -> None:
    topic_name = streams.run_events.get_topic_name()

    # One record at a time, acknowledged only after its transaction committed. Faust's take_events()
    # acknowledges a whole buffered batch in a ``finally`` even when the batch was cut off by a rebalance,
    # so a commit could pass records that never reached SQL (seen here with two workers).
    @streams.app.agent(streams.run_events, name="hamster.projection", concurrency=1)
    async def project(stream: Any) -> None:
        async for event in stream.events():
            try:
                record: RunEvent = decode_run_event(event.value)
            except (ValidationError, ValueError) as exc:
                await set_aside(streams, "projection", exc, event)
                continue
            item = (event.message.partition, event.message.offset, record)
            await asyncio.to_thread(apply_batch, engine, topic_name, [item])
