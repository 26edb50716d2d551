"""Dead letters as data: where a record came from, why it was refused, its exact bytes; no content echoed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hamster.intake.envelope import decode_envelope
from streams.dead_letter_codec import (
    MAX_REASON,
    dead_letter,
    decode_dead_letter,
    describe,
    encode_dead_letter,
)


def refusal(raw: bytes) -> Exception:
    with pytest.raises((ValidationError, ValueError)) as caught:
        decode_envelope(raw)
    return caught.value


def test_original_bytes_and_position_survive_the_round_trip():
    """Any bytes (not UTF-8, not JSON) and the key come back exactly after encoding and decoding."""
    raw = b"\xff\x00\x80 not json"
    letter = dead_letter("match", refusal(raw), "ns.events", 3, 41, b"acme/x", raw)
    again = decode_dead_letter(encode_dead_letter(letter))
    assert (again.value, again.key, again.source_topic, again.partition, again.offset) == (
        raw,
        b"acme/x",
        "ns.events",
        3,
        41,
    )
    assert again.agent == "match" and again.reason


def test_a_record_without_key_keeps_none():
    """A keyless record stays keyless."""
    letter = dead_letter("projection", ValueError("bad"), "ns.run-events", 0, 1, None, b"{}")
    assert decode_dead_letter(encode_dead_letter(letter)).key is None


def test_reason_names_the_fields_but_never_echoes_the_content():
    """A validation reason says which fields are wrong, without quoting the values (they may be secrets)."""
    reason = describe(refusal(b'{"delivery_id": "hunter2-secret-value", "event": "push"}'))
    assert "delivery_id" in reason and "validation error" in reason
    assert "hunter2" not in reason


def test_reason_is_bounded():
    """However long the error, the reason stays short: the record itself is kept anyway."""
    assert len(describe(ValueError("x" * 100_000))) <= MAX_REASON
