"""Set an undecodable record aside on the dead-letter topic, so the agent that met it can go on."""

from __future__ import annotations

import logging
from typing import Any

from streams.app import Streams
from streams.dead_letter_codec import dead_letter, encode_dead_letter

log = logging.getLogger(__name__)


async def set_aside(streams: Streams, agent: str, exc: Exception, event: Any) -> None:
    """Append ``event``'s record to the dead letters (acknowledged) with the reason ``exc``."""
    message = event.message
    letter = dead_letter(agent, exc, message.topic, message.partition, message.offset, event.key, event.value)
    pending = await streams.dead_letters.send(key=message.topic.encode(), value=encode_dead_letter(letter))
    await pending
    log.error(
        "%s: record %s[%d]@%d set aside as a dead letter: %s",
        agent,
        message.topic,
        message.partition,
        message.offset,
        letter.reason,
    )
