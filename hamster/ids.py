"""Deterministic ids from natural keys, so a redelivered webhook or a retried write lands on the same run."""

from __future__ import annotations

import uuid

_HAMSTER = uuid.UUID("5f1f6d1e-6b9a-4c7e-9d3a-68616d737465")


def run_id(delivery_id: str, subscriber: str, replay_id: str | None = None) -> str:
    """One run per (delivery, subscriber); a replay gets runs of its own."""
    key = f"{delivery_id}/{subscriber}" + (f"/replay/{replay_id}" if replay_id else "")
    return str(uuid.uuid5(_HAMSTER, key))


def event_id(run: str, seq: int) -> str:
    """The id of the ``seq``-th record of a run: a rewritten record keeps its id."""
    return str(uuid.uuid5(_HAMSTER, f"{run}#{seq}"))


def lease_id(run: str, seq: int, attempt: int, until: float) -> str:
    """The id of a lease renewal made at the run's ``seq``-th record, for ``attempt``, lasting ``until``."""
    return str(uuid.uuid5(_HAMSTER, f"{run}#{seq}/lease/{attempt}/{until:.3f}"))
