"""Agent: keep the subscribers table. Publishes this worker's subscribers at start; applies changes."""

from __future__ import annotations

import logging
from typing import Any

from agents.plumbing import decoded, subscriber_states
from hamster.subscribers.changes import SUBSCRIBER_CHANGE, SubscriberPublished, SubscriberState, apply_change
from streams.app import RawStream, Streams, send_acked

log = logging.getLogger(__name__)


def register(streams: Streams) -> None:
    app = streams.app

    @app.agent(streams.subscriber_changes, name="hamster.subscribers", concurrency=1)
    async def apply_subscriber_changes(stream: RawStream) -> None:
        async for _, change in decoded(streams, "subscribers", stream, SUBSCRIBER_CHANGE.validate_json):
            key = change.name.encode()
            raw = streams.subscribers.get(key)
            current = SubscriberState.model_validate_json(raw) if raw else None
            new = apply_change(current, change)
            if new is not None:
                streams.subscribers[key] = new.model_dump_json().encode()
                log.info(
                    "subscriber %s: %s (version %s, enabled=%s)",
                    change.name,
                    change.type,
                    new.spec.version,
                    new.enabled,
                )

    @app.task  # type: ignore[untyped-decorator]
    async def publish_subscribers() -> None:
        for spec in streams.catalog.specs:
            change = SubscriberPublished(name=spec.name, spec=spec)
            await send_acked(streams.subscriber_changes, spec.name, change.model_dump_json().encode())
        log.info("published %d subscriber(s) from %s", len(streams.catalog.specs), streams.catalog.module)

    @app.page("/hamster/subscribers/")
    async def subscribers_view(web: Any, request: Any) -> Any:
        """This worker's view of the subscribers table (tests use it to see a change has arrived)."""
        return web.json(
            {name: state.model_dump(mode="json") for name, state in subscriber_states(streams).items()}
        )
