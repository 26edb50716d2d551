"""Dead letters: records an agent could not decode or validate, kept with the reason and the original bytes.

An agent that raises on a record acknowledges it anyway (Faust restarts the actor without retrying), and
one that skips it loses it quietly. Instead the record goes to ``<namespace>.dead-letters`` as a
``DeadLetter`` (where it came from, why, and its exact bytes, base64), and processing goes on. ``hamster dlq
list`` (or ``GET /api/dead-letters``) shows them; ``hamster dlq replay`` (or ``POST
/api/dead-letters/{number}/replay``) appends the original bytes, with the original key, to the source topic
again (after the bug is fixed or the schema upcast).

Pure: the adapters that write and read the topic live in ``agents.plumbing`` and
``streams.dead_letter_store``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# A dead letter keeps the whole record, so its reason need not: the start of the first line is enough.
MAX_REASON = 500


def _now() -> datetime:
    return datetime.now(UTC)


class DeadLetter(BaseModel):
    """One undecodable record, with where it came from and why it was set aside."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    agent: str
    reason: str
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    dead_at: datetime = Field(default_factory=_now)

    @property
    def key(self) -> bytes | None:
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.value_b64)


def describe(exc: Exception) -> str:
    """Why a record was refused, without echoing its content (it may hold anything, secrets included)."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '(record)'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        ]
        text = f"{exc.error_count()} validation error(s): " + "; ".join(problems)
    else:
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return text[:MAX_REASON]


def dead_letter(
    agent: str, exc: Exception, topic: str, partition: int, offset: int, key: bytes | None, value: bytes
) -> DeadLetter:
    return DeadLetter(
        agent=agent,
        reason=describe(exc),
        source_topic=topic,
        partition=partition,
        offset=offset,
        key_b64=None if key is None else base64.b64encode(key).decode(),
        value_b64=base64.b64encode(value).decode(),
    )


def encode_dead_letter(letter: DeadLetter) -> bytes:
    return letter.model_dump_json().encode()


def decode_dead_letter(raw: bytes) -> DeadLetter:
    return DeadLetter.model_validate_json(raw)


def listed(number: int, letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as ``hamster dlq list --json`` and ``GET /api/dead-letters`` show it."""
    return {"number": number, **letter.model_dump(mode="json")}
