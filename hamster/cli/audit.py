"""`hamster audit verify`: recompute the run log's hash chains; and the `runs show --audit` listing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError
from hamster.settings import Settings


def run_log(
    settings: Settings, *, since_ms: int | None = None, only: list[int] | None = None
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(position, record JSON as stored) for every record of the run log, in offset order per partition."""
    from hamster.audit import Position
    from streams.reader import read_topic
    from streams.topics import run_events_topic

    for record in read_topic(settings.kafka, run_events_topic(settings), since_ms=since_ms, only=only):
        try:
            content = json.loads(record.value)
        except ValueError:
            content = {"run_id": (record.key or b"").decode(errors="replace"), "seq": 0, "hash": "?"}
        position = Position(record.topic, record.partition, record.offset, record.timestamp)
        yield position, content


@click.group()
def audit() -> None:
    """Check the run log's tamper evidence."""


@audit.command()
@click.option("--since", help="Only records from this time on: ISO time or a time ago (2h, 7d).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(since: str | None, as_json: bool) -> None:
    """Recompute every run's hash chain; list each break and exit 1 if there is any."""
    from hamster.audit import verify as verify_chains
    from hamster.replay import parse_time

    settings = settings_or_exit()
    try:
        since_ms = int(parse_time(since, datetime.now(UTC)).timestamp() * 1000) if since else None
        result = verify_chains(run_log(settings, since_ms=since_ms))
    except HamsterError as exc:
        fail(str(exc), 2)
        return
    if as_json:
        body = {
            "ok": result.ok,
            "records": result.records,
            "runs": result.runs,
            "unsealed": result.unsealed,
            "breaks": [asdict(b) for b in result.breaks],
        }
        click.echo(json.dumps(body, indent=2))
    else:
        console = Console()
        console.print(
            f"checked {result.records} record(s) of {result.runs} run(s)"
            + (f"; {result.unsealed} written before the chain existed" if result.unsealed else "")
        )
        for b in result.breaks:
            console.print(
                f"break: run {b.run_id} record {b.seq} at "
                f"{b.position.topic}/{b.position.partition}/{b.position.offset}: {b.reason}\n"
                f"  expected {b.expected or '-'}\n  found    {b.found or '-'}",
                highlight=False,
                soft_wrap=True,
            )
        if result.breaks:
            console.print(f"[bold red]{len(result.breaks)} break(s) in the chain[/bold red]")
        else:
            console.print("every chain is intact")
    raise SystemExit(0 if result.ok else 1)


def show_run_audit(run_id: str, as_json: bool) -> None:
    """Every record of one run, from the run log, with where it is and what it did."""
    from hamster.audit import audit_rows
    from hamster.run_events import RUN_EVENT
    from streams.reader import partition_for

    settings = settings_or_exit()
    only = [partition_for(run_id, settings.partitions)]
    try:
        records = [
            (position, RUN_EVENT.validate_python(content))
            for position, content in run_log(settings, only=only)
            if content.get("run_id") == run_id
        ]
    except HamsterError as exc:
        fail(str(exc), 2)
        return
    if not records:
        fail(f"no record of run {run_id} in the run log (retention: {settings.retention_days} days)")
    rows = audit_rows(records)
    if as_json:
        out = []
        for row in rows:
            item = asdict(row)
            item["at"] = row.at.isoformat()
            out.append(item)
        click.echo(json.dumps(out, indent=2))
        return
    first = rows[0]
    console = Console()
    console.print(
        f"[bold]run {run_id}[/bold]  subscriber {first.subscriber} (version {first.subscriber_version}), "
        f"delivery {first.delivery_id}"
    )
    # Two lines per record rather than a table: it stays readable at any terminal width.
    for row in rows:
        digest = (
            f"input {row.input_digest}"
            if row.input_digest
            else f"output {row.output_digest}"
            if row.output_digest
            else f"error {row.error_digest}"
            if row.error_digest
            else ""
        )
        stage = (row.stage or "") + (f" attempt {row.attempt}" if row.attempt is not None else "")
        duration = f"{row.duration_ms:.0f} ms" if row.duration_ms is not None else ""
        console.print(
            f"{row.seq:>3} {row.type:<15} {stage:<24} {row.at.isoformat(timespec='milliseconds')} {duration}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"    {row.position.topic}/{row.position.partition}/{row.position.offset}  worker {row.worker}  "
            f"{digest}  hash {row.hash[:16]}",
            highlight=False,
            soft_wrap=True,
        )
