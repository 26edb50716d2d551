"""What the agents share, and the one module of ``agents`` they import (agents never import each other).

- ``decoded``: the decode-or-dead-letter loop. Each record is decoded; one that cannot be is set aside on
  the dead-letters topic (``set_aside``) with the reason and its original bytes, and the agent goes on.
- ``subscriber_states``: this worker's view of the subscribers table.
- ``RunView`` (``run_view.py``): every run in flight, as this worker folds the run log.
- ``RunRecorder`` (``recorder.py``): the one way a worker appends a run's records to the run log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from agents.plumbing.recorder import RecordRefused, RunEnded, RunRecorder
from agents.plumbing.run_view import RunView
from hamster.subscribers.changes import SubscriberState
from streams.app import RawEvent, RawStream, Streams, send_acked
from streams.dead_letter_codec import dead_letter, encode_dead_letter

__all__ = [
    "RecordRefused",
    "RunEnded",
    "RunRecorder",
    "RunView",
    "decode_or_set_aside",
    "decoded",
    "set_aside",
    "set_aside_event",
    "subscriber_states",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def set_aside(
    streams: Streams,
    agent: str,
    exc: Exception,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
) -> None:
    """Append the record at ``topic``/``partition``/``offset`` to the dead letters (acknowledged), with the
    reason ``exc``; ``agent`` names who could not use it."""
    letter = dead_letter(agent, exc, topic, partition, offset, key, value)
    await send_acked(streams.dead_letters, topic, encode_dead_letter(letter))
    log.error(
        "%s: record %s[%d]@%d set aside as a dead letter: %s", agent, topic, partition, offset, letter.reason
    )


async def set_aside_event(streams: Streams, agent: str, exc: Exception, event: RawEvent) -> None:
    """``set_aside`` for the record of a Faust ``event``."""
    message = event.message
    await set_aside(
        streams, agent, exc, message.topic, message.partition, message.offset, event.key, event.value
    )


async def decode_or_set_aside(
    streams: Streams, agent: str, decode: Callable[[bytes], T], event: RawEvent
) -> T | None:
    """``decode(event.value)``, or None once the event's record is set aside because it cannot be decoded
    (pydantic's ``ValidationError`` is a ``ValueError``)."""
    try:
        return decode(event.value)
    except ValueError as exc:
        await set_aside_event(streams, agent, exc, event)
        return None


async def decoded(
    streams: Streams, agent: str, stream: RawStream, decode: Callable[[bytes], T]
) -> AsyncIterator[tuple[RawEvent, T]]:
    """The events of a Faust ``stream`` with their decoded values; the records that cannot be decoded are
    set aside and skipped. Faust acknowledges an event when the next one is asked for, as without this."""
    async for event in stream.events():
        value = await decode_or_set_aside(streams, agent, decode, event)
        if value is not None:
            yield event, value


def subscriber_states(streams: Streams) -> dict[str, SubscriberState]:
    """This worker's view of the subscribers table: each subscriber's latest state, by name."""
    out = {}
    for key, raw in list(streams.subscribers.items()):
        if raw:
            out[key.decode()] = SubscriberState.model_validate_json(raw)
    return out
