"""Who may change things: a bearer token, compared in constant time. Pure; the routes act on the answer."""

from __future__ import annotations

import hmac
from typing import Literal

Verdict = Literal["allowed", "missing", "wrong"]


def check_bearer(authorization: str | None, token: str) -> Verdict:
    """``Authorization: Bearer <token>`` (RFC 6750 §2.1) against the configured token."""
    if not authorization:
        return "missing"
    scheme, _, offered = authorization.partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        return "missing"
    return "allowed" if hmac.compare_digest(offered.strip().encode(), token.encode()) else "wrong"
