"""Where the dashboard gets what the projection does not hold: the subscribers table, and changes to it.

Both go through Kafka with kafka-python, which blocks, so each call runs in a thread. Tests hand the
dashboard other callables with the same shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from hamster.settings import Settings
from hamster.subscriber_changes import (
    SUBSCRIBER_CHANGE,
    SubscriberDisabled,
    SubscriberEnabled,
    SubscriberState,
    fold_changes,
)

ListSubscribers = Callable[[], Awaitable[dict[str, SubscriberState]]]
SetEnabled = Callable[[str, bool], Awaitable[None]]
Replay = Callable[[str], Awaitable[dict[str, Any]]]


def kafka_subscribers(settings: Settings) -> ListSubscribers:
    def read() -> dict[str, SubscriberState]:
        from streams.reader import read_topic
        from streams.topics import subscribers_topic

        records = read_topic(settings.kafka_bootstrap, subscribers_topic(settings))
        return fold_changes([SUBSCRIBER_CHANGE.validate_json(r.value) for r in records])

    async def list_subscribers() -> dict[str, SubscriberState]:
        return await asyncio.to_thread(read)

    return list_subscribers


def kafka_set_enabled(settings: Settings) -> SetEnabled:
    """Publish ``SubscriberEnabled``/``SubscriberDisabled``, as ``hamster subscribers enable/disable`` do."""

    def publish(name: str, enabled: bool) -> None:
        from streams.admin import publish_subscriber_change
        from streams.topics import subscribers_topic

        change = SubscriberEnabled(name=name) if enabled else SubscriberDisabled(name=name)
        publish_subscriber_change(
            settings.kafka_bootstrap, subscribers_topic(settings), name, change.model_dump_json().encode()
        )

    async def set_enabled(name: str, enabled: bool) -> None:
        await asyncio.to_thread(publish, name, enabled)

    return set_enabled


def kafka_replay(settings: Settings) -> Replay:
    """Rerun a run from its first stage, exactly as ``hamster replay run RUN_ID`` does (no GitHub reports)."""

    def publish(run_id: str) -> dict[str, Any]:
        # The same code path as the command line, so the dashboard's button and the CLI cannot drift apart.
        from streams.rerun import rerun_run

        new = rerun_run(settings, run_id, None, False)
        return {"run_id": new.run_id, "original_run_id": new.original_run_id, "attempt": new.attempt}

    async def replay(run_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(publish, run_id)

    return replay
