"""The load: the recorded ``pull_request`` payloads (20 to 30 KB), moved to ``<owner>/repo-<n>``, signed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from hamster.intake.signatures import signature_for

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "github" / "webhooks" / "pull_request"
SECRET = "bench-webhook-secret-5d1e8b07"
REPOS = 16  # spread over the partitions, as many repositories' webhooks would be


@dataclass(frozen=True)
class Body:
    raw: bytes
    signature: str
    repo: str


def bodies(repos: int = REPOS, secret: str = SECRET, owner: str = "bench") -> list[Body]:
    """Every recorded pull_request payload once per repository, serialised and signed up front: the first
    ``repos`` bodies are one payload on as many repositories (the owner picks the subscriber)."""
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        payload = json.loads(path.read_text())
        for n in range(repos):
            repo = f"{owner}/repo-{n}"
            payload["repository"]["full_name"] = repo
            payload["repository"]["name"] = f"repo-{n}"
            payload["repository"]["owner"]["login"] = owner
            raw = json.dumps(payload).encode()
            out.append(Body(raw, signature_for(raw, secret.encode()), repo))
    return out


def headers(body: Body, delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery (a fresh delivery id each time)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": body.signature,
    }
