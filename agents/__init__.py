"""One module per agent, in flow order: subscribers, match, stages, projection, reporting."""

from __future__ import annotations

from sqlalchemy import Engine

from agents import match, projection, reporting, stages, subscribers
from streams.app import Streams


def register_all(streams: Streams, engine: Engine) -> None:
    subscribers.register(streams)
    match.register(streams)
    stages.register(streams)
    projection.register(streams, engine)
    reporting.register(streams)
