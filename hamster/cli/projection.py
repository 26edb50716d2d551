"""`hamster projection rebuild`: the SQL projection again, from the run log's offset zero."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError


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
    from hamster.projection import apply, clear, make_engine
    from hamster.run_events import decode_run_event
    from streams.reader import read_topic, topic_size
    from streams.topics import run_events_topic

    settings = settings_or_exit()
    topic = run_events_topic(settings)
    records = changed = undecodable = 0
    try:
        engine = make_engine(url or settings.db_url)
        total = topic_size(settings.kafka, topic)
        progress = Progress(
            TextColumn("rebuilding the projection"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=as_json,
            transient=True,
        )
        # One transaction: readers see the old view until the new one is complete, never half of it.
        with progress, engine.begin() as conn:
            task = progress.add_task("rebuild", total=total)
            clear(conn)
            for record in read_topic(settings.kafka, topic):
                records += 1
                progress.advance(task)
                try:
                    event = decode_run_event(record.value)
                except ValueError:
                    undecodable += 1
                    continue
                changed += apply(conn, record.topic, record.partition, record.offset, event)
    except HamsterError as exc:
        fail(str(exc), 2)
    summary = {"records": records, "applied": changed, "undecodable": undecodable}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"projection rebuilt from {records} record(s) of {topic}: {changed} applied"
            + (f", {undecodable} undecodable" if undecodable else "")
        )
