"""The fake GitHub's GitHub App: its key pair, installations and tokens, checked as GitHub checks them.

- A JWT (``Authorization: Bearer …``) must be RS256-signed with the app's private key, carry ``iss`` (the
  app id), ``iat`` not in the future and ``exp`` in the future, at most ten minutes after ``iat``
  (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app).
  It is good for the ``/app…`` endpoints and ``GET /repos/{o}/{r}/installation`` only.
- An installation token (``token ghs_…``) is made by ``POST /app/installations/{id}/access_tokens``,
  expires after ``token_lifetime_s`` (an hour, as on GitHub) and reaches only its installation's
  repositories; another repository is "Not Found", as GitHub hides what a token cannot see.

The app is the one recorded in ``GitHub_authenticated_app.json`` (id 16341). GitHub's answers for an
installation and for a new token are not among the recordings: they are built from the fields of GitHub's
REST reference (https://docs.github.com/en/rest/apps/apps), the account copied from the recorded app's owner.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakegithub.cassettes import recorded

RECORDED_APP_ID = 16341
PERMISSIONS = {"checks": "write", "contents": "write", "issues": "write", "metadata": "read",
               "pull_requests": "write", "statuses": "write"}  # fmt: skip


class Refused(Exception):
    """An answer GitHub gives instead of the resource: ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Installation:
    id: int
    account: str
    repos: set[str]


@dataclass
class Token:
    installation_id: int
    expires_at: float


@dataclass
class FakeApp:
    app_id: int = RECORDED_APP_ID
    token_lifetime_s: float = 3600.0
    installations: dict[int, Installation] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    issued: list[tuple[int, str]] = field(default_factory=list)  # (installation, token), in order
    codes: set[str] = field(default_factory=set)  # manifest codes not yet converted
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()

    def private_key_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def write_key(self, path: Path) -> Path:
        """The app's private key as GitHub hands it out (a PEM file), for ``HAMSTER_GITHUB_APP_KEY``."""
        path.write_bytes(self.private_key_pem())
        path.chmod(0o600)
        return path

    # control
    def install(self, installation_id: int, account: str, repos: list[str]) -> None:
        with self._lock:
            self.installations[installation_id] = Installation(installation_id, account, set(repos))

    def expire_tokens(self, installation_id: int | None = None) -> None:
        """End the installation's live tokens now, well before the expiry GitHub gave for them."""
        with self._lock:
            for token in self.tokens.values():
                if installation_id in (None, token.installation_id):
                    token.expires_at = min(token.expires_at, time.time() - 1)

    def installation_of_token(self, token: str) -> int | None:
        found = self.tokens.get(token)
        return found.installation_id if found else None

    # checks
    def check_jwt(self, bearer: str) -> None:
        try:
            claims = jwt.decode(
                bearer,
                self.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
                "which the assertion expires",
            ) from None
        except jwt.ImmatureSignatureError:
            raise Refused(
                401, "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued"
            ) from None  # fmt: skip
        except jwt.PyJWTError:
            raise Refused(401, "A JSON web token could not be decoded") from None
        if int(claims["exp"]) - int(claims["iat"]) > 600:
            raise Refused(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims["iss"]) != str(self.app_id):
            raise Refused(401, "A JSON web token could not be decoded")

    def check_token(self, token: str, repo: str | None) -> int:
        """The installation of a live token allowed on ``repo``; else what GitHub answers."""
        with self._lock:
            found = self.tokens.get(token)
            if found is None or found.expires_at <= time.time():
                raise Refused(401, "Bad credentials")
            installation = self.installations[found.installation_id]
        if repo is not None and repo not in installation.repos:
            raise Refused(404, "Not Found")
        return found.installation_id

    # answers
    def app_body(self, base_url: str) -> Any:
        repo = "sigmavirus24/github3.py"  # named in the recording's links: left as it is
        return recorded("GitHub_authenticated_app", "GET", "/app", repo, repo, base_url)

    def installation_body(self, installation_id: int, base_url: str) -> dict[str, Any]:
        with self._lock:
            installation = self.installations.get(installation_id)
        if installation is None:
            raise Refused(404, "Not Found")
        owner = dict(self.app_body(base_url)["owner"])
        owner.update(login=installation.account, url=f"{base_url}/users/{installation.account}")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": installation_id,
            "account": owner,
            "access_tokens_url": f"{base_url}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{base_url}/installation/repositories",
            "html_url": f"https://github.com/organizations/{installation.account}/settings/installations/"
            f"{installation_id}",
            "app_id": self.app_id,
            "app_slug": self.app_body(base_url)["slug"],
            "target_id": owner.get("id"),
            "target_type": "Organization",
            "permissions": PERMISSIONS,
            "events": ["check_run", "check_suite", "pull_request", "push"],
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "repository_selection": "selected",
            "created_at": now,
            "updated_at": now,
            "suspended_at": None,
            "suspended_by": None,
        }

    def manifest_code(self) -> str:
        """A code as GitHub gives the browser after an app was created from a manifest (good once)."""
        code = secrets.token_hex(10)
        with self._lock:
            self.codes.add(code)
        return code

    def convert(self, code: str, base_url: str) -> dict[str, Any]:
        """``POST /app-manifests/{code}/conversions``: the app, with its private key and webhook secret."""
        with self._lock:
            if code not in self.codes:
                raise Refused(404, "Not Found")
            self.codes.discard(code)
        body = dict(self.app_body(base_url))
        body.update(
            pem=self.private_key_pem().decode(),
            webhook_secret=secrets.token_hex(20),
            client_id="Iv1." + secrets.token_hex(8),
            client_secret=secrets.token_hex(20),
        )
        return body

    def installation_for_repo(self, repo: str) -> int:
        with self._lock:
            for installation in self.installations.values():
                if repo in installation.repos:
                    return installation.id
        raise Refused(404, "Not Found")

    def new_token(self, installation_id: int) -> dict[str, Any]:
        with self._lock:
            if installation_id not in self.installations:
                raise Refused(404, "Not Found")
            token = "ghs_" + secrets.token_hex(18)
            expires = time.time() + self.token_lifetime_s
            self.tokens[token] = Token(installation_id, expires)
            self.issued.append((installation_id, token))
        return {
            "token": token,
            "expires_at": datetime.fromtimestamp(int(expires), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": PERMISSIONS,
            "repository_selection": "selected",
        }
