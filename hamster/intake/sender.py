"""Send a webhook the way GitHub does: the same headers, the body signed with the webhook secret.

Used by ``hamster send`` to replay a saved payload at an intake (Hamster's own or any other).
Headers as GitHub sends them: https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import aiohttp

from hamster.intake.signatures import legacy_signature_for, signature_for

DEFAULT_URL = "http://127.0.0.1:8080/webhooks/github"


class SendFailed(Exception):
    """The intake could not be reached or did not answer."""


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def github_headers(body: bytes, event: str, secret: bytes, delivery_id: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with ``body``; a new delivery id unless one is given."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/hamster",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_for(body, secret),
        # GitHub still sends the SHA-1 signature for old receivers; Hamster itself checks only SHA-256.
        "X-Hub-Signature": legacy_signature_for(body, secret),
    }


async def post_webhook(url: str, body: bytes, headers: dict[str, str], timeout_s: float = 30.0) -> Reply:
    """POST ``body`` with ``headers``; ``SendFailed`` if nothing answered."""
    # trust_env: honour HTTP(S)_PROXY and NO_PROXY like any other command-line client.
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(trust_env=True, timeout=timeout) as session,
            # A file object: aiohttp sends it in chunks, where big raw bytes would block the loop.
            session.post(url, data=io.BytesIO(body), headers=headers) as response,
        ):
            return Reply(response.status, response.reason or "", await response.text())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SendFailed(f"cannot reach {url}: {exc or type(exc).__name__}") from exc
