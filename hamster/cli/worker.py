"""`hamster worker`: a Faust worker running every agent for the subscribers in HAMSTER_SUBSCRIBERS."""

from __future__ import annotations

import click
from faust.worker import Worker

from agents import register_all
from hamster import logs
from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError
from hamster.projection.sql import make_engine
from hamster.subscribers.spec import load_catalog
from streams.admin import ensure_topics, topic_replication
from streams.app import create_streams
from streams.topics import topic_specs


@click.command()
@click.option("--web-port", default=6066, show_default=True, type=int, help="Faust web (stats) port.")
@click.option("--web-host", default="127.0.0.1", show_default=True, help="Faust web bind address.")
@click.option(
    "--slots",
    type=click.IntRange(1, 1024),
    default=None,
    help="Stage attempts this worker runs at once [default: HAMSTER_WORKER_SLOTS, else the number of CPUs].",
)
def worker(web_port: int, web_host: str, slots: int | None) -> None:
    """Run a worker: every agent, and stage slots that run pipeline stages.

    Start as many as you like: Kafka shares the agents' partitions between them, and any worker with a
    free slot takes the next stage that may start. On SIGTERM it finishes its stages for
    HAMSTER_SHUTDOWN_GRACE_S and hands the rest to the other workers.
    """
    settings = settings_or_exit(worker_slots=slots)
    factor, insync = settings.replication_factor, settings.min_insync_replicas
    try:
        catalog = load_catalog(settings.subscribers)
        specs = topic_specs(settings, list(catalog.tasks))
        ensure_topics(settings.kafka, specs, replication_factor=factor, min_insync_replicas=insync)
        replication = topic_replication(settings.kafka, factor, insync)
        (settings.home / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes only its own folder
        engine = make_engine(settings.db_url)
    except HamsterError as exc:
        fail(str(exc), 2)
    streams = create_streams(settings, catalog, web_port=web_port, web_host=web_host, replication=replication)
    register_all(streams, engine)
    Worker(
        streams.app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logs.dict_config(settings.log_level, settings.log_format),
    ).execute_from_commandline()
