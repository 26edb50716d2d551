"""Webhook signatures: HMAC-SHA256 of the raw request body, as GitHub computes it. Pure, no I/O.

GitHub sends ``X-Hub-Signature-256: sha256=<hex digest>`` computed with the webhook's secret over the exact
bytes of the body, and asks receivers to compare in constant time:
https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

_PREFIX = "sha256="


def signature_for(body: bytes, secret: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body`` signed with ``secret``."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def legacy_signature_for(body: bytes, secret: bytes) -> str:
    """The legacy ``X-Hub-Signature`` (HMAC-SHA1) value; GitHub still sends it, Hamster never trusts it."""
    return "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()


def verify_signature(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True if ``header`` is the signature of ``body`` under any of ``secrets``.

    Several secrets are accepted so a secret can be rotated without dropping deliveries. With no secret
    configured nothing verifies: an intake without a secret must not accept unsigned events.
    """
    if not header or not secrets or not header.startswith(_PREFIX):
        return False
    # compare_digest wants both sides ASCII; a header with other characters cannot match anyway.
    if not header.isascii():
        return False
    matched = False
    for secret in secrets:
        # No early exit: the time taken must not tell which secret, if any, matched.
        matched |= hmac.compare_digest(signature_for(body, secret), header)
    return matched


# A webhook secret shorter than this, or one of the placeholders below, is refused at start: it can be
# guessed, and whoever guesses it can start runs. GitHub's own generator gives 40 hex digits.
MIN_SECRET_CHARS = 20
_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "changemeplease",
        "secret",
        "mysecret",
        "yoursecret",
        "webhooksecret",
        "yourwebhooksecret",
        "testsecret",
        "password",
        "example",
        "replaceme",
        "todo",
        "xxx",
    }
)


def weakness(secret: str) -> str | None:
    """Why ``secret`` is too weak to sign webhooks with, or None when it will do."""
    folded = "".join(c for c in secret.lower() if c.isalnum())
    if folded in _PLACEHOLDERS or folded.startswith(("changeme", "replaceme", "yoursecret")):
        return "is a placeholder"
    if len(secret) < MIN_SECRET_CHARS:
        return f"is {len(secret)} characters long; use at least {MIN_SECRET_CHARS}"
    if len(set(secret)) < 8:
        return f"uses only {len(set(secret))} different characters"
    return None
