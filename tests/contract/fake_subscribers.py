"""A fake subscribers table for the dashboard: the API contract tests and the GitHub sign-in tests use it."""

from __future__ import annotations

from datetime import UTC, datetime

from hamster.subscribers.changes import SubscriberState
from hamster.subscribers.spec import SubscriberSpec


class FakeSubscribers:
    """The subscribers table as the dashboard reads and changes it, recording every change asked for."""

    def __init__(self) -> None:
        spec = SubscriberSpec(name="ci", events=("pull_request",), pipeline=("lint", "test"), version="v1")
        at = datetime(2026, 11, 27, tzinfo=UTC)
        self.states = {
            "ci": SubscriberState(spec=spec, changed_at=at, changed_by="w:1", change="SubscriberPublished")
        }
        self.changes: list[tuple[str, bool]] = []

    async def list(self) -> dict[str, SubscriberState]:
        return dict(self.states)

    async def set_enabled(self, name: str, enabled: bool) -> None:
        self.changes.append((name, enabled))
