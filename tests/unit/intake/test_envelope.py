"""Parsing a webhook into an EventEnvelope: every recorded sample, and every way a request is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hamster.errors import WebhookRejected
from hamster.intake.envelope import (
    MAX_DEPTH,
    EventEnvelope,
    decode_envelope,
    encode_envelope,
    kafka_headers,
    parse_webhook,
)
from tests.samples import WEBHOOKS

SAMPLES = sorted(WEBHOOKS.glob("*/*.json"))
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def headers(event: str = "push", **extra: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": DELIVERY,
        "Content-Type": "application/json",
        **extra,
    }


def parse(body: bytes, hdrs: dict[str, str] | None = None) -> EventEnvelope:
    return parse_webhook(headers() if hdrs is None else hdrs, body, NOW)


def rejected(body: bytes, hdrs: dict[str, str] | None = None) -> int:
    with pytest.raises(WebhookRejected) as info:
        parse(body, hdrs)
    return info.value.status


def nested(levels: int) -> bytes:
    """A JSON object nested ``levels`` deep: {"a": {"a": ... {}}}."""
    return ('{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)).encode()


def test_samples_are_present() -> None:
    """The recorded samples were copied into the tests (they are what the other tests run over)."""
    assert len(SAMPLES) >= 30
    assert {p.parent.name for p in SAMPLES} >= {"ping", "push", "pull_request", "check_run"}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_parses_into_its_envelope(sample: Path) -> None:
    """Each recorded payload yields the key, action, repository, sender and installation it carries."""
    body = sample.read_bytes()
    payload: dict[str, Any] = json.loads(body)
    event = sample.parent.name

    envelope = parse(body, headers(event))

    repository = (payload.get("repository") or {}).get("full_name")
    organization = (payload.get("organization") or {}).get("login")
    assert envelope.event == event
    assert envelope.delivery_id == DELIVERY
    assert envelope.payload == payload
    assert envelope.repository == repository
    assert envelope.key == (repository or organization or "-")
    assert envelope.action == payload.get("action")
    assert envelope.sender == payload["sender"]["login"]
    assert envelope.installation_id == (payload.get("installation") or {}).get("id")
    assert envelope.received_at == NOW
    assert envelope.replay_of is None
    assert envelope.schema_version == 1


@pytest.mark.parametrize(
    ("sample", "key", "action", "installation_id"),
    [
        ("check_run/requested_action.payload.json", "electron/electron", "requested_action", 690857),
        ("ping/with-organization.payload.json", "Octocoders", None, None),
        ("push/with-installation.payload.json", "Codertocat/Hello-World", None, 1),
        ("check_suite/requested.payload.json", "Codertocat/Hello-World", "requested", 957387),
    ],
)
def test_known_samples_give_known_fields(
    sample: str, key: str, action: str | None, installation_id: int | None
) -> None:
    """Spot checks against values read off the recorded samples by hand."""
    envelope = parse((WEBHOOKS / sample).read_bytes(), headers(sample.split("/")[0]))
    assert (envelope.key, envelope.action, envelope.installation_id) == (key, action, installation_id)


def test_key_falls_back_to_dash() -> None:
    """An event with neither repository nor organization is keyed "-"."""
    envelope = parse(b'{"zen": "Design for failure.", "hook_id": 1}', headers("ping"))
    assert envelope.key == "-"
    assert (envelope.repository, envelope.sender, envelope.installation_id) == (None, None, None)


def test_fields_of_the_wrong_type_are_ignored() -> None:
    """A non-string action or a non-integer installation id is recorded as None, not an error."""
    body = json.dumps({"action": 3, "installation": {"id": "7"}, "repository": "x", "sender": None}).encode()
    envelope = parse(body)
    assert (envelope.action, envelope.installation_id, envelope.repository, envelope.sender) == (None,) * 4


def test_any_event_type_is_accepted() -> None:
    """Events Hamster knows nothing about are kept too: there is no allow-list."""
    assert parse(b"{}", headers("security_and_analysis")).event == "security_and_analysis"


def test_delivery_id_is_canonicalised() -> None:
    """An upper-case delivery UUID is stored in canonical lower-case form."""
    assert parse(b"{}", headers(**{"X-GitHub-Delivery": DELIVERY.upper()})).delivery_id == DELIVERY


def test_header_names_are_case_insensitive() -> None:
    """Headers are found whatever their case, as HTTP requires."""
    hdrs = {"x-github-event": "push", "X-GITHUB-DELIVERY": DELIVERY, "content-type": "application/json"}
    assert parse(b"{}", hdrs).event == "push"


def test_content_type_parameters_are_allowed() -> None:
    """application/json with a charset parameter is still JSON."""
    assert parse(b"{}", headers(**{"Content-Type": "Application/JSON; charset=utf-8"})).event == "push"


def test_received_at_is_kept_in_utc() -> None:
    """A timezone-aware receive time is stored converted to UTC."""
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    envelope = parse_webhook(headers(), b"{}", local)
    assert envelope.received_at == NOW and envelope.received_at.utcoffset() == timedelta(0)


def test_naive_received_at_is_a_bug() -> None:
    """A naive receive time is refused (it would be ambiguous once stored)."""
    with pytest.raises(ValidationError):
        parse_webhook(headers(), b"{}", datetime(2026, 5, 1, 12, 0))


def test_missing_event_header_is_400() -> None:
    """No X-GitHub-Event header: 400."""
    hdrs = headers()
    del hdrs["X-GitHub-Event"]
    assert rejected(b"{}", hdrs) == 400


@pytest.mark.parametrize("event", ["", "  ", "push event", "push\x00", "push\nX-Evil: 1"])
def test_malformed_event_header_is_400(event: str) -> None:
    """An empty or malformed X-GitHub-Event header: 400."""
    assert rejected(b"{}", headers(event)) == 400


def test_missing_delivery_header_is_400() -> None:
    """No X-GitHub-Delivery header: 400."""
    hdrs = headers()
    del hdrs["X-GitHub-Delivery"]
    assert rejected(b"{}", hdrs) == 400


@pytest.mark.parametrize(
    "delivery", ["", "42", "not-a-uuid", DELIVERY + "0", "{" + DELIVERY + "}", DELIVERY.replace("-", "")]
)
def test_delivery_header_that_is_not_a_uuid_is_400(delivery: str) -> None:
    """An X-GitHub-Delivery header that is not a hyphenated UUID: 400."""
    assert rejected(b"{}", headers(**{"X-GitHub-Delivery": delivery})) == 400


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain", "application/json-patch+json"]
)
def test_content_type_other_than_json_is_415(content_type: str | None) -> None:
    """A body that is not declared application/json (e.g. GitHub's form encoding): 415."""
    hdrs = headers()
    if content_type is None:
        del hdrs["Content-Type"]
    else:
        hdrs["Content-Type"] = content_type
    assert rejected(b"{}", hdrs) == 415


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe{}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b'{"a": "\xe9"}',
        b"\xef\xbb\xbf{}",
        b'{"a": "unterminated}',
    ],
    ids=[
        "empty",
        "truncated",
        "text",
        "utf-16",
        "nan",
        "infinity",
        "overflow",
        "latin-1",
        "bom",
        "unterminated-string",
    ],
)
def test_body_that_is_not_utf8_json_is_400(body: bytes) -> None:
    """A body that is not strict UTF-8 JSON: 400."""
    assert rejected(body) == 400


@pytest.mark.parametrize("body", [b"[]", b'"push"', b"42", b"null", b"true"])
def test_body_that_is_not_an_object_is_400(body: bytes) -> None:
    """A JSON body that is not an object: 400."""
    assert rejected(body) == 400


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """A body nested exactly MAX_DEPTH levels deep parses and round-trips."""
    envelope = parse(nested(MAX_DEPTH))
    assert decode_envelope(encode_envelope(envelope)) == envelope


def test_nesting_past_the_limit_is_400() -> None:
    """One level more than MAX_DEPTH: 400."""
    assert rejected(nested(MAX_DEPTH + 1)) == 400


def test_very_deep_nesting_is_400_without_recursion_error() -> None:
    """A body nested a million levels deep is refused cleanly, not with a RecursionError."""
    assert rejected(b'{"a":' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}") == 400


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Brackets inside JSON strings (escaped quotes included) are text, not depth."""
    text = "[" * 500 + '\\"' + "{" * 500
    envelope = parse(json.dumps({"body": text}).encode())
    assert envelope.payload["body"] == text


def test_envelope_round_trips_through_json() -> None:
    """decode_envelope(encode_envelope(e)) == e, payload and times included."""
    envelope = parse((WEBHOOKS / "push" / "1.payload.json").read_bytes())
    raw = encode_envelope(envelope)
    assert isinstance(raw, bytes)
    assert decode_envelope(raw) == envelope


def test_envelope_is_frozen_and_closed() -> None:
    """Envelopes cannot be changed after the fact, and unknown fields are refused on decode."""
    envelope = parse(b"{}")
    with pytest.raises(ValidationError):
        envelope.event = "other"
    data = json.loads(encode_envelope(envelope))
    data["surprise"] = 1
    with pytest.raises(ValidationError):
        decode_envelope(json.dumps(data).encode())


def test_kafka_headers_carry_event_and_delivery() -> None:
    """The Kafka record headers repeat GitHub's event and delivery headers, as bytes."""
    envelope = parse(b"{}", headers("issues"))
    expected = [("X-GitHub-Event", b"issues"), ("X-GitHub-Delivery", DELIVERY.encode())]
    assert kafka_headers(envelope) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 123456789012345678901234567890, "n": -9223372036854775809}',  # beyond 64 bits: not floats
        b'{"f": 1e16, "g": 0.1, "u": "\\u00e9\\ud83d\\ude00", "nested": [[{"a": null}]]}',
    ],
)
def test_every_payload_the_intake_accepts_round_trips_exactly(body: bytes) -> None:
    """The fast codec keeps what the intake stored: integers beyond 64 bits stay integers (orjson would
    read them as floats), escapes and floats stay what they were."""
    envelope = parse(body)
    again = decode_envelope(encode_envelope(envelope))
    assert again == envelope
    assert again.payload == json.loads(body)
    assert [type(v) for v in again.payload.values()] == [type(v) for v in json.loads(body).values()]


def test_a_payload_that_is_not_an_object_is_refused_on_decode() -> None:
    """An envelope whose payload is not a JSON object is not an envelope, whichever parser reads it."""
    data = json.loads(encode_envelope(parse(b"{}")))
    for payload in ([1, 2], "text", None):
        with pytest.raises(ValueError):
            decode_envelope(json.dumps({**data, "payload": payload}).encode())
