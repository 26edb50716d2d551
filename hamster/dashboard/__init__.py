"""The dashboard served by ``hamster web``: server-rendered pages and the JSON API behind them.

No build step: Jinja templates rendered on the server, and a few lines of inline JavaScript that refresh
the runs table and send the authenticated changes.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import Engine

from hamster.artifacts import ArtifactStore
from hamster.dashboard.backend import (
    kafka_dead_letters,
    kafka_decide,
    kafka_replay,
    kafka_replay_dead_letter,
    kafka_set_enabled,
    kafka_subscribers,
    kafka_trigger,
)
from hamster.dashboard.routes import Dashboard, mount
from hamster.settings import Settings
from streams.log_topic import read_run_log

__all__ = ["Dashboard", "for_settings", "mount"]


def for_settings(settings: Settings, engine: Engine) -> Dashboard:
    """The dashboard of a deployment: the projection in ``engine``, everything else through Kafka."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return Dashboard(
        engine=engine,
        list_subscribers=kafka_subscribers(settings),
        set_enabled=kafka_set_enabled(settings),
        api_token=token or None,
        replay=kafka_replay(settings),
        list_dead_letters=kafka_dead_letters(settings),
        replay_dead_letter=kafka_replay_dead_letter(settings),
        trigger=kafka_trigger(settings),
        decide=kafka_decide(settings),
        read_log=partial(read_run_log, settings),
        artifacts=ArtifactStore.for_settings(settings),
    )
