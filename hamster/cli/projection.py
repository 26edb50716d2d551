"""`hamster projection rebuild`: the SQL projection again, from the run log's offset zero."""

from __future__ import annotations

import asyncio
import json

import click
from sqlalchemy import Engine

from hamster.cli import fail, settings_or_exit
from hamster.cli.progress import progress
from hamster.errors import HamsterError
from hamster.kafka_access import KafkaAccess
from hamster.projection.sql import apply_records, clear, make_engine
from hamster.runs.events import decode_run_event
from streams.reader import read_batches, topic_size
from streams.topics import run_events_topic

BATCH = 5000
"""Records folded and written together: most runs' records fall in one batch."""


@click.group()
def projection() -> None:
    """Manage the SQL projection of the run log."""


@projection.command()
@click.option(
    "--into",
    "url",
    help="Rebuild into this database URL instead of the live one (HAMSTER_DATABASE_URL). Safe while "
    "workers run; rebuilding the live one holds its write lock until done.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def rebuild(url: str | None, as_json: bool) -> None:
    """Empty the projection and apply every record of the run log to it, in one transaction."""
    settings = settings_or_exit()
    topic = run_events_topic(settings)
    try:
        engine = make_engine(url or settings.db_url)
        total = topic_size(settings.kafka, topic)
        records, changed, undecodable = asyncio.run(_rebuild(engine, settings.kafka, topic, total, as_json))
    except HamsterError as exc:
        fail(str(exc), 2)
        return
    summary = {"records": records, "applied": changed, "undecodable": undecodable}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"projection rebuilt from {records} record(s) of {topic}: {changed} applied"
            + (f", {undecodable} undecodable" if undecodable else "")
        )


async def _rebuild(
    engine: Engine, kafka: KafkaAccess, topic: str, total: int, quiet: bool
) -> tuple[int, int, int]:
    """(records read, applied, undecodable). Batch by batch as fetched, each folded and written at once
    (``apply_records``), all in one transaction: readers see the old view until the new one is complete."""
    records = changed = undecodable = 0
    with progress("rebuilding the projection", total, quiet) as advance, engine.begin() as conn:
        clear(conn)
        async for batch in read_batches(kafka, topic, max_records=BATCH):
            items = []
            for record in batch:
                try:
                    items.append((record.partition, record.offset, decode_run_event(record.value)))
                except ValueError:
                    undecodable += 1
            # Records of one run share a partition and come in its offset order; partitions may interleave.
            changed += apply_records(conn, topic, items)
            records += len(batch)
            advance(len(batch))
    return records, changed, undecodable
