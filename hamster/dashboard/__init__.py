"""The dashboard served by ``hamster web``: server-rendered pages and the JSON API behind them.

No build step: Jinja templates rendered on the server, and a few lines of inline JavaScript that refresh
the runs table and send the authenticated changes.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import Engine

from hamster.dashboard.access import Access
from hamster.dashboard.backend import (
    kafka_dead_letters,
    kafka_decide,
    kafka_replay,
    kafka_replay_dead_letter,
    kafka_set_enabled,
    kafka_subscribers,
    kafka_trigger,
)
from hamster.dashboard.github_signin import GitHubSignIn
from hamster.dashboard.routes import Dashboard, mount
from hamster.execution.artifacts import ArtifactStore
from hamster.settings import Settings
from streams.log_topic import read_run_log

__all__ = ["Access", "Dashboard", "access_for_settings", "for_settings", "mount"]


def access_for_settings(settings: Settings, open_paths: frozenset[str] = frozenset()) -> Access:
    """Who may sign in and how, from the settings; ``open_paths``: routes served to anyone."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    return Access(
        tokens=settings.api_credentials(),
        public=settings.dashboard_public,
        **({"session_secret": secret} if secret else {}),
        session_max_age_s=settings.session_max_age_s,
        cookie_secure=settings.cookie_secure,
        public_url=settings.public_url,
        github=GitHubSignIn.for_settings(settings),
        open_paths=open_paths,
    )


def for_settings(settings: Settings, engine: Engine, open_paths: frozenset[str] = frozenset()) -> Dashboard:
    """The dashboard of a deployment: the projection in ``engine``, everything else through Kafka."""
    return Dashboard(
        engine=engine,
        list_subscribers=kafka_subscribers(settings),
        set_enabled=kafka_set_enabled(settings),
        access=access_for_settings(settings, open_paths),
        github_web_url=settings.github_web,
        replay=kafka_replay(settings),
        list_dead_letters=kafka_dead_letters(settings),
        replay_dead_letter=kafka_replay_dead_letter(settings),
        trigger=kafka_trigger(settings),
        decide=kafka_decide(settings),
        read_log=partial(read_run_log, settings),
        artifacts=ArtifactStore.for_settings(settings),
    )
