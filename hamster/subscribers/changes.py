"""Subscriber history: changes as past-tense records, and the table state they fold into.

Workers publish ``SubscriberPublished`` for every subscriber of their module when they start;
``hamster subscribers disable/enable`` publish the other two. Only real changes reach the subscribers
table, so its changelog reads as the subscriber history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hamster.runs.events import now, this_worker
from hamster.subscribers.spec import SubscriberSpec


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    at: datetime = Field(default_factory=now)
    by: str = Field(default_factory=this_worker)


class SubscriberPublished(_Change):
    type: Literal["SubscriberPublished"] = "SubscriberPublished"
    spec: SubscriberSpec


class SubscriberDisabled(_Change):
    type: Literal["SubscriberDisabled"] = "SubscriberDisabled"


class SubscriberEnabled(_Change):
    type: Literal["SubscriberEnabled"] = "SubscriberEnabled"


SubscriberChange = Annotated[
    SubscriberPublished | SubscriberDisabled | SubscriberEnabled, Field(discriminator="type")
]
SUBSCRIBER_CHANGE = TypeAdapter(SubscriberChange)


class SubscriberState(BaseModel):
    """A row of the subscribers table."""

    model_config = ConfigDict(frozen=True)

    spec: SubscriberSpec
    enabled: bool = True
    changed_at: datetime
    changed_by: str
    change: str  # the type of the change that produced this state


def apply_change(current: SubscriberState | None, change: SubscriberChange) -> SubscriberState | None:
    """The new table state, or None when the change changes nothing (same version, same flag)."""
    if isinstance(change, SubscriberPublished):
        if current is not None and current.spec.version == change.spec.version:
            return None
        enabled = current.enabled if current is not None else True  # a disable outlives a redeploy
        return SubscriberState(
            spec=change.spec, enabled=enabled, changed_at=change.at, changed_by=change.by, change=change.type
        )
    if current is None:
        return None  # enabling or disabling a subscriber no worker has published
    enabled = isinstance(change, SubscriberEnabled)
    if current.enabled == enabled:
        return None
    return current.model_copy(
        update={"enabled": enabled, "changed_at": change.at, "changed_by": change.by, "change": change.type}
    )


def fold_changes(changes: list[SubscriberChange]) -> dict[str, SubscriberState]:
    table: dict[str, SubscriberState] = {}
    for change in changes:
        new = apply_change(table.get(change.name), change)
        if new is not None:
            table[change.name] = new
    return table
