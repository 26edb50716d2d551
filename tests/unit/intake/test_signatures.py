"""Webhook signature checks: HMAC-SHA256 over the raw body, any configured secret, constant-time compare."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hamster.intake.signatures import legacy_signature_for, signature_for, verify_signature

BODY = b'{"zen":"Keep it logically awesome."}'


def test_signature_matches_githubs_documented_example() -> None:
    """signature_for reproduces the worked example in GitHub's "validating deliveries" docs."""
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    assert signature_for(b"Hello, World!", b"It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_signature_is_hmac_sha256_hex_of_the_body() -> None:
    """The signature is "sha256=" plus the hex HMAC-SHA256 of the exact body bytes."""
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert signature_for(BODY, b"s3cret") == f"sha256={expected}"


def test_legacy_signature_is_hmac_sha1() -> None:
    """The legacy X-Hub-Signature value is "sha1=" plus the hex HMAC-SHA1."""
    assert legacy_signature_for(BODY, b"k") == "sha1=" + hmac.new(b"k", BODY, hashlib.sha1).hexdigest()


def test_good_signature_verifies() -> None:
    """A body signed with the configured secret verifies."""
    assert verify_signature(BODY, signature_for(BODY, b"s1"), [b"s1"])


def test_wrong_secret_fails() -> None:
    """A body signed with another secret does not verify."""
    assert not verify_signature(BODY, signature_for(BODY, b"other"), [b"s1"])


def test_changed_body_fails() -> None:
    """One changed byte in the body breaks the signature."""
    assert not verify_signature(BODY + b" ", signature_for(BODY, b"s1"), [b"s1"])


def test_missing_header_fails() -> None:
    """No header (or an empty one) never verifies."""
    assert not verify_signature(BODY, None, [b"s1"])
    assert not verify_signature(BODY, "", [b"s1"])


def test_no_configured_secret_never_verifies() -> None:
    """With no secret configured nothing verifies, not even a signature made with an empty key."""
    assert not verify_signature(BODY, signature_for(BODY, b""), [])


@pytest.mark.parametrize("signed_with", [b"old", b"new"])
def test_any_configured_secret_verifies_during_rotation(signed_with: bytes) -> None:
    """While a secret is rotated, bodies signed with either the old or the new one verify."""
    assert verify_signature(BODY, signature_for(BODY, signed_with), [b"new", b"old"])


@pytest.mark.parametrize(
    "header",
    [
        "sha256",
        "sha256=",
        "sha256=zz",
        "sha1=" + hmac.new(b"s1", BODY, hashlib.sha1).hexdigest(),
        signature_for(BODY, b"s1").removeprefix("sha256="),
        signature_for(BODY, b"s1").upper(),
        signature_for(BODY, b"s1") + " ",
        signature_for(BODY, b"s1")[:-1] + "é",
    ],
    ids=[
        "no-equals",
        "empty-digest",
        "not-hex",
        "sha1-only",
        "no-prefix",
        "upper-case",
        "trailing-space",
        "non-ascii",
    ],
)
def test_malformed_header_fails(header: str) -> None:
    """A header that is not exactly "sha256=<lower-case hex>" of the body does not verify."""
    assert not verify_signature(BODY, header, [b"s1"])
