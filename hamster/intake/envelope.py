"""The envelope every GitHub delivery is kept in on ``hamster.events``, and parsing a webhook into it.

Pure: no I/O. ``parse_webhook`` turns the headers and raw body of an (already authenticated) request into an
``EventEnvelope`` or raises ``WebhookRejected`` carrying the HTTP status to answer. Every GitHub event type is
accepted: what to do with an event is decided downstream, not at the door.

Headers and body as GitHub sends them:
https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, field_validator

from hamster import json_codec
from hamster.errors import WebhookRejected

MAX_DEPTH = 128
"""Deepest JSON nesting accepted. GitHub's payloads nest a dozen levels; anything near this is not GitHub."""

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"

_EVENT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The depth check runs before the parser, in C-speed passes: drop every JSON string (escapes included, so
# brackets inside strings do not count), keep only brackets, then take the running maximum.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r'[^\[\]{}"]+')
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class EventEnvelope(BaseModel):
    """One GitHub delivery as appended to the events topic; the Kafka key is ``key``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    delivery_id: str
    event: str
    action: str | None
    repository: str | None
    key: str
    sender: str | None
    installation_id: int | None
    received_at: datetime
    payload: dict[str, Any]
    replay_of: str | None = None

    @field_validator("delivery_id")
    @classmethod
    def _canonical_uuid(cls, value: str) -> str:
        if not _UUID.fullmatch(value):
            raise ValueError("expected a UUID")
        return str(uuid.UUID(value))

    @field_validator("received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("expected a timezone-aware time")
        return value.astimezone(UTC)


def parse_webhook(headers: Mapping[str, str], body: bytes, received_at: datetime) -> EventEnvelope:
    """The envelope for one delivery, or ``WebhookRejected`` (400 bad request, 415 not JSON).

    Call it only after the signature was verified: nothing here is trusted before that.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    event = lowered.get(EVENT_HEADER.lower(), "").strip()
    if not event:
        raise WebhookRejected(400, f"missing {EVENT_HEADER} header")
    if not _EVENT_NAME.fullmatch(event):
        raise WebhookRejected(400, f"malformed {EVENT_HEADER} header")
    delivery = lowered.get(DELIVERY_HEADER.lower(), "").strip()
    if not _UUID.fullmatch(delivery):
        raise WebhookRejected(400, f"missing or malformed {DELIVERY_HEADER} header (expected a UUID)")
    # A webhook can be configured to send application/x-www-form-urlencoded; Hamster wants the JSON form.
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise WebhookRejected(415, "expected Content-Type: application/json")
    return envelope_for(event, delivery, _json_object(body), received_at)


def envelope_for(
    event: str, delivery_id: str, payload: dict[str, Any], received_at: datetime
) -> EventEnvelope:
    """The envelope of a payload: a webhook's (``parse_webhook``), or an event Hamster makes itself."""
    return EventEnvelope(
        delivery_id=delivery_id,
        event=event,
        action=_string(payload.get("action")),
        repository=_string(_field(payload, "repository", "full_name")),
        key=_kafka_key(payload),
        sender=_string(_field(payload, "sender", "login")),
        installation_id=_integer(_field(payload, "installation", "id")),
        received_at=received_at,
        payload=payload,
    )


def encode_envelope(envelope: EventEnvelope) -> bytes:
    """The envelope's JSON: its own fields as pydantic writes them, the payload by orjson (much faster)."""
    data = envelope.model_dump(mode="json", exclude={"payload"})
    data["payload"] = envelope.payload
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (the intake accepts them): pydantic writes it
        return envelope.model_dump_json().encode()


def decode_envelope(raw: bytes) -> EventEnvelope:
    """The envelope in ``raw``; a ValueError (pydantic's ValidationError) when it is not one.

    The JSON is read by ``hamster.json_codec`` (orjson where exact) and the payload taken as it is (any JSON
    object is a valid ``dict[str, Any]``); only the envelope's own fields go through pydantic, which costs
    a fraction of validating the whole 28 KB payload again.
    """
    try:
        data = json_codec.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("payload"), dict):
        payload = data["payload"]
        head = EventEnvelope.model_validate({**data, "payload": {}})
        return head.model_copy(update={"payload": payload})
    return EventEnvelope.model_validate_json(raw)  # says precisely what is wrong


def kafka_headers(envelope: EventEnvelope) -> list[tuple[str, bytes]]:
    """GitHub's own headers, so a consumer can route on them without decoding the value."""
    return [(EVENT_HEADER, envelope.event.encode()), (DELIVERY_HEADER, envelope.delivery_id.encode())]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    # Checked before parsing, so a deeply nested body is refused without the parser recursing into it.
    if _deeper_than(text, MAX_DEPTH):
        raise WebhookRejected(400, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so are over-long integers
        raise WebhookRejected(400, "body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    return payload


def _deeper_than(text: str, limit: int) -> bool:
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if '"' in brackets:
        return False  # an unterminated string: not JSON at all, and the parser will say so
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a double")
    return value


def _kafka_key(payload: Mapping[str, Any]) -> str:
    """Repository, else organization, else ``-``: one repository's events stay in order on one partition."""
    return (
        _string(_field(payload, "repository", "full_name"))
        or _string(_field(payload, "organization", "login"))
        or "-"
    )


def _field(payload: Mapping[str, Any], outer: str, inner: str) -> object:
    value = payload.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
