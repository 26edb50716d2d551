"""`hamster web`: run the webhook intake, the dashboard and its API, and ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import click
from aiohttp import web as aiohttp_web
from sqlalchemy.exc import SQLAlchemyError

from hamster import dashboard, logs
from hamster.broker import probe
from hamster.cli import fail, settings_or_exit
from hamster.intake.http import OPEN_PATHS, WEBHOOK_PATH, create_intake_app, healthz
from hamster.intake.signatures import weakness
from hamster.projection.sql import make_engine
from hamster.settings import Settings
from streams.admin import ensure_topics
from streams.producer import EventProducer
from streams.topics import topic_specs

log = logging.getLogger("hamster.web")

_RETRY_S = 2.0


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option(
    "--intake-only",
    is_flag=True,
    help="Serve only the webhook intake (/webhooks/github, /healthz, /readyz, /metrics): the port to "
    "expose to GitHub.",
)
@click.option(
    "--dashboard-only",
    is_flag=True,
    help="Serve only the dashboard, its API and sign-in pages (and /healthz): a port kept for readers.",
)
def web(host: str, port: int, intake_only: bool, dashboard_only: bool) -> None:
    """Receive GitHub webhooks and store each delivery in Kafka before answering; serve the dashboard.

    By default one port serves both. Every dashboard page and /api/* route needs a login (an API token
    from HAMSTER_API_TOKEN(S), or signing in with GitHub) unless HAMSTER_DASHBOARD_PUBLIC=true. Run
    `hamster web --intake-only` and `hamster web --dashboard-only` on two ports to keep the dashboard off
    the address GitHub reaches.
    """
    if intake_only and dashboard_only:
        fail("--intake-only and --dashboard-only exclude each other (neither: both on one port)", code=2)
    settings = settings_or_exit()
    if not dashboard_only:
        if not settings.secrets():
            fail("HAMSTER_WEBHOOK_SECRET is not set: the intake will not accept unsigned webhooks", code=2)
        for number, secret in enumerate(settings.webhook_secret, 1):
            why = weakness(secret.get_secret_value())
            if why is not None:
                fail(
                    f"HAMSTER_WEBHOOK_SECRET: secret {number} {why}; make one with `openssl rand -hex 20` "
                    "and set it on the GitHub webhook too",
                    code=2,
                )
    logs.configure(settings.log_level, settings.log_format)
    if settings.log_level != "DEBUG":
        # The Kafka clients narrate every connection at INFO; the intake logs what matters itself.
        for client in ("kafka", "aiokafka"):
            logging.getLogger(client).setLevel(logging.WARNING)
    try:
        app = build_app(settings, intake=not dashboard_only, board=not intake_only)
    except SQLAlchemyError as exc:
        fail(f"cannot open the projection at HAMSTER_DATABASE_URL: {exc}", code=2)
    if not dashboard_only:
        app.cleanup_ctx.append(_create_topics_in_background(settings))
        log.info("starting the intake on http://%s:%d%s", host, port, WEBHOOK_PATH)
    if not intake_only:
        log.info("serving the dashboard on http://%s:%d/runs", host, port)
    # auto_decompress off: the intake inflates a compressed webhook itself, stopping at its size cap.
    aiohttp_web.run_app(app, host=host, port=port, print=None, access_log=None, auto_decompress=False)


def build_app(settings: Settings, intake: bool = True, board: bool = True) -> aiohttp_web.Application:
    """The app `hamster web` serves: the intake, the dashboard behind its logins, or both."""
    if intake:
        app = create_intake_app(settings, EventProducer.for_settings(settings))
    else:
        app = aiohttp_web.Application()
        app.router.add_get("/healthz", healthz)
    if board:
        found = dashboard.for_settings(settings, make_engine(settings.db_url), OPEN_PATHS)
        if not (found.access.public or found.access.tokens or found.access.github):
            log.warning(
                "no API token and no GitHub sign-in is configured: nobody can sign in to the dashboard "
                "(set HAMSTER_API_TOKENS or HAMSTER_GITHUB_OAUTH_CLIENT_ID, or HAMSTER_DASHBOARD_PUBLIC=true)"
            )
        dashboard.mount(app, found)
    return app


def _create_topics_in_background(
    settings: Settings,
) -> Callable[[aiohttp_web.Application], AsyncIterator[None]]:
    """Create the topics once the broker answers; meanwhile the intake serves (and /readyz says 503)."""

    async def create_topics() -> None:
        while True:
            try:
                # kafka-python blocks, so it runs off the event loop; and it leaks a thread and sockets when
                # it cannot bootstrap, so it is only asked once the broker answers a raw ApiVersions probe.
                if await asyncio.to_thread(probe.any_server_answers, settings.kafka, 2.0):
                    await asyncio.to_thread(
                        ensure_topics,
                        settings.kafka,
                        topic_specs(settings),
                        timeout_s=5.0,
                        replication_factor=settings.replication_factor,
                        min_insync_replicas=settings.min_insync_replicas,
                    )
                    return
                log.warning(
                    "Kafka at %s does not answer yet; will create the topics once it does",
                    settings.kafka.describe(),
                )
            except Exception as exc:  # BrokerError, or kafka-python's own errors while the broker starts
                log.warning("topics not created yet, retrying in %.0f s: %s", _RETRY_S, exc)
            await asyncio.sleep(_RETRY_S)

    async def context(app: aiohttp_web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(create_topics())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context
