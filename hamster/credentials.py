"""Who is asking, and what they may do: API tokens with a role, signed session cookies, CSRF tokens.

Pure (no I/O): ``hamster.dashboard.access`` applies the answers to requests.

- API tokens: ``name:role:token`` entries (``HAMSTER_API_TOKENS``, or one a line in
  ``HAMSTER_API_TOKENS_FILE``); ``HAMSTER_API_TOKEN`` alone is an ``operate`` token named ``api-token``.
  Offered as ``Authorization: Bearer <token>`` (RFC 6750 §2.1), compared in constant time.
- Sessions: a cookie signed (HMAC, itsdangerous) and dated, so it cannot be forged or kept past its age.
- CSRF: a form's token is an HMAC of the session's own id, so it is worth nothing in another session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

Role = Literal["read", "operate"]
ROLES: tuple[Role, ...] = ("read", "operate")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: Role
    token: str

    def __repr__(self) -> str:  # never the token itself
        return f"ApiToken(name={self.name!r}, role={self.role!r})"


@dataclass(frozen=True)
class Principal:
    """Someone signed in: a token's name or a GitHub login, their role, and how they proved it."""

    name: str
    role: Role
    via: Literal["token", "github", "public"]

    def may(self, needed: Role) -> bool:
        return needed == "read" or self.role == "operate"


def parse_tokens(text: str, where: str = "HAMSTER_API_TOKENS") -> tuple[ApiToken, ...]:
    """``name:role:token`` entries separated by commas or new lines; ``#`` starts a comment line."""
    found: list[ApiToken] = []
    for number, raw in enumerate(text.replace(",", "\n").splitlines(), 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, role, token = [*entry.split(":", 2), "", ""][:3]
        if not name or not set(name) <= _NAME_CHARS:
            raise ValueError(
                f"{where} entry {number}: expected name:role:token, with a name of letters/digits"
            )
        if role not in ROLES:
            raise ValueError(f"{where} entry {number} ({name}): role must be read or operate, got {role!r}")
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"{where} entry {number} ({name}): the token needs {MIN_TOKEN_CHARS}+ characters"
            )
        if any(t.name == name for t in found):
            raise ValueError(f"{where}: the name {name!r} is given twice")
        found.append(ApiToken(name, role, token))
    return tuple(found)


BearerVerdict = Principal | Literal["missing", "wrong"]


def check_bearer(authorization: str | None, tokens: tuple[ApiToken, ...]) -> BearerVerdict:
    """The principal an ``Authorization: Bearer`` header proves, ``missing``, or ``wrong``."""
    if not authorization:
        return "missing"
    scheme, _, offered = authorization.partition(" ")
    offered = offered.strip()
    if scheme.lower() != "bearer" or not offered:
        return "wrong"
    found: ApiToken | None = None
    for candidate in tokens:  # every one compared: the time taken does not say which matched
        if hmac.compare_digest(offered.encode(), candidate.token.encode()):
            found = candidate
    return Principal(found.name, found.role, "token") if found is not None else "wrong"


def token_principal(offered: str, tokens: tuple[ApiToken, ...]) -> Principal | None:
    verdict = check_bearer(f"Bearer {offered}", tokens)
    return verdict if isinstance(verdict, Principal) else None


class Sessions:
    """Signed, dated session cookies. A session is a dict: ``sid`` always; ``sub``/``role``/``via`` once
    signed in; ``state``/``next`` while a GitHub sign-in is under way."""

    def __init__(self, secret: str, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="hamster-session")
        self._csrf_key = hashlib.sha256(b"hamster-csrf\0" + secret.encode()).digest()
        self.max_age_s = max_age_s

    @staticmethod
    def new(**fields: Any) -> dict[str, Any]:
        return {"sid": secrets.token_urlsafe(18), **fields}

    def dump(self, session: dict[str, Any]) -> str:
        return self._serializer.dumps(session)

    def load(self, cookie: str | None) -> dict[str, Any] | None:
        """The session, or None for no cookie, a forged or altered one, or one past its age."""
        if not cookie:
            return None
        try:
            found = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is one
            return None
        return found if isinstance(found, dict) and isinstance(found.get("sid"), str) else None

    @staticmethod
    def principal(session: dict[str, Any] | None) -> Principal | None:
        if not session or not isinstance(session.get("sub"), str) or session.get("role") not in ROLES:
            return None
        return Principal(
            session["sub"], session["role"], "github" if session.get("via") == "github" else "token"
        )

    def csrf_token(self, session: dict[str, Any]) -> str:
        return hmac.new(self._csrf_key, str(session["sid"]).encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: dict[str, Any] | None, offered: str | None) -> bool:
        if not session or not offered:
            return False
        return hmac.compare_digest(self.csrf_token(session).encode(), offered.encode())


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no ``//host`` or ``/\\host``), else /runs."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\n" in target:
        return "/runs"
    return target
