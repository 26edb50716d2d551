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
from hamster.intake import WEBHOOK_PATH, create_intake_app
from hamster.projection import make_engine
from hamster.settings import Settings
from streams.admin import ensure_topics
from streams.producer import EventProducer
from streams.topics import topic_specs

log = logging.getLogger("hamster.web")

_RETRY_S = 2.0


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port.")
def web(host: str, port: int) -> None:
    """Receive GitHub webhooks and store each delivery in Kafka before answering."""
    settings = settings_or_exit()
    if not settings.secrets():
        fail("HAMSTER_WEBHOOK_SECRET is not set: the intake will not accept unsigned webhooks", code=2)
    logs.configure(settings.log_level, settings.log_format)
    if settings.log_level != "DEBUG":
        # The Kafka clients narrate every connection at INFO; the intake logs what matters itself.
        for client in ("kafka", "aiokafka"):
            logging.getLogger(client).setLevel(logging.WARNING)
    app = create_intake_app(settings, EventProducer.for_settings(settings))
    try:
        engine = make_engine(settings.db_url)
    except SQLAlchemyError as exc:
        fail(f"cannot open the projection at HAMSTER_DATABASE_URL: {exc}", code=2)
    dashboard.mount(app, dashboard.for_settings(settings, engine))
    app.cleanup_ctx.append(_create_topics_in_background(settings))
    log.info("starting the intake on http://%s:%d%s", host, port, WEBHOOK_PATH)
    aiohttp_web.run_app(app, host=host, port=port, print=None, access_log=None)


def _create_topics_in_background(
    settings: Settings,
) -> Callable[[aiohttp_web.Application], AsyncIterator[None]]:
    """Create the topics once the broker answers; meanwhile the intake serves (and /readyz says 503)."""

    async def create_topics() -> None:
        while True:
            try:
                # kafka-python blocks, so it runs off the event loop; and it leaks a thread and sockets when
                # it cannot bootstrap, so it is only asked once the broker answers a raw ApiVersions probe.
                if await asyncio.to_thread(probe.answers_api_versions, settings.kafka, 2.0):
                    await asyncio.to_thread(
                        ensure_topics, settings.kafka, topic_specs(settings), timeout_s=5.0
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
