"""Events Hamster makes itself, for one subscriber: manual runs (``hamster trigger``, the dashboard's form)
and schedule ticks. Pure: the envelopes, and what the match agent reads back from them.

They go through the events topic like webhooks, so they replay and audit like webhooks. Each names its
subscriber under the payload's ``hamster`` key (GitHub's own payloads have no such key): the match agent
starts a run of that subscriber only (if it is enabled), whatever its filters, with the payload's params
over the subscriber's.

- A manual run is a ``workflow_dispatch``-like event: ``ref`` (a full ref), ``inputs`` (the params),
  ``sha`` (the commit the ref pointed at, resolved through the GitHub API when it was made), the repository
  and the person (``sender``). Its delivery id is new each time.
- A schedule tick is a ``schedule`` event for one subscriber, repository and branch at one tick. Its
  delivery id is a uuid5 of those, so every worker's scheduler writes the same id for the same tick and
  the redelivery filter starts one run per tick however many wrote it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hamster.intake.envelope import EventEnvelope, envelope_for
from hamster.intake.github_events import EventInfo

KEY = "hamster"
MANUAL_EVENT = "workflow_dispatch"
SCHEDULE_EVENT = "schedule"
_TICKS = uuid.UUID("1b0c4b5e-53b6-4c4e-9a57-2f1f3c1d8e51")  # the namespace of schedule delivery ids


def manual_event(
    subscriber: str,
    repo: str,
    ref: str,
    sha: str,
    params: dict[str, Any],
    sender: str,
    *,
    delivery_id: str | None = None,
    now: datetime | None = None,
) -> EventEnvelope:
    """A manual run of ``subscriber`` on ``repo`` at ``ref`` (a branch name or a full ref) = ``sha``."""
    full_ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    payload = {
        "ref": full_ref,
        "sha": sha,
        "inputs": dict(params),
        "repository": {"full_name": repo, "name": repo.split("/", 1)[-1]},
        "sender": {"login": sender},
        KEY: {"subscriber": subscriber, "params": dict(params)},
    }
    return envelope_for(MANUAL_EVENT, delivery_id or str(uuid.uuid4()), payload, now or datetime.now(UTC))


def tick_delivery_id(subscriber: str, repo: str, branch: str, tick: datetime) -> str:
    return str(uuid.uuid5(_TICKS, f"{subscriber}/{repo}/{branch}/{tick.astimezone(UTC).isoformat()}"))


def schedule_event(subscriber: str, repo: str, branch: str, tick: datetime, cron: str) -> EventEnvelope:
    """The tick ``tick`` of ``subscriber``'s schedule on ``repo``'s ``branch``."""
    payload = {
        "schedule": cron,
        "ref": f"refs/heads/{branch}",
        "tick": tick.astimezone(UTC).isoformat(),
        "repository": {"full_name": repo, "name": repo.split("/", 1)[-1]},
        KEY: {"subscriber": subscriber, "params": {}},
    }
    return envelope_for(SCHEDULE_EVENT, tick_delivery_id(subscriber, repo, branch, tick), payload, tick)


def target_of(event: EventInfo) -> str | None:
    """The subscriber an event Hamster made names, or None for GitHub's events."""
    if event.name not in (MANUAL_EVENT, SCHEDULE_EVENT):
        return None
    own = event.payload.get(KEY)
    name = own.get("subscriber") if isinstance(own, dict) else None
    return name if isinstance(name, str) else None


def params_of(event: EventInfo) -> dict[str, Any]:
    """The params an event Hamster made gives its run, over its subscriber's."""
    own = event.payload.get(KEY)
    params = own.get("params") if isinstance(own, dict) else None
    return dict(params) if isinstance(params, dict) and target_of(event) else {}
