"""`hamster runs list|show|logs`: runs from the SQL projection, their logs from ``<ns>.logs``.

SQLAlchemy, the artifact store and the Kafka readers are imported in the commands that use them, not at
the top, so that `hamster runs list --help` starts in a fifth of a second rather than a second.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hamster.cli import fail, settings_or_exit
from hamster.errors import BrokerError

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]


def _engine() -> Any:
    from hamster.projection.sql import make_engine  # SQLAlchemy: see the module's docstring

    settings = settings_or_exit()
    return make_engine(settings.db_url)


@click.group()
def runs() -> None:
    """Show runs and their stages."""


@runs.command("list")
@click.option("--repo", help="Only runs for this repository (owner/name).")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs in this status.")
@click.option("--subscriber", help="Only runs of this subscriber.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many runs."
)
@click.option("--cursor", help="The page after this point (printed on stderr when there are more runs).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(
    repo: str | None,
    status: str | None,
    subscriber: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first, a page at a time."""
    from hamster.projection.queries import list_runs, next_cursor  # SQLAlchemy

    try:
        found = list_runs(
            _engine(), repo=repo, status=status, subscriber=subscriber, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        fail(str(exc), 2)
        return
    more = next_cursor(found, limit)
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        table = Table("run", "subscriber", "repo", "event", "status", "stages", "requested")
        for run in found:
            stages = escape(" → ".join(f"{s['name']}:{s['status']}" for s in run["stages"]))
            event = run["event"] + (f".{run['action']}" if run["action"] else "")
            table.add_row(
                run["run_id"][:8],
                run["subscriber"],
                run["repo"] or "-",
                event,
                run["status"],
                stages,
                run["requested_at"][:19],
            )
        Console().print(table)
    if more:
        click.echo(f"more runs: add --cursor {more}", err=True)


def find_run(run_id: str) -> dict[str, Any]:
    """The run ``run_id`` names (a unique prefix of at least 4 characters will do), or exit 1."""
    from hamster.projection.queries import find_runs, get_run  # SQLAlchemy

    engine = _engine()
    run = get_run(engine, run_id)
    if run is None and len(run_id) >= 4:
        candidates = find_runs(engine, run_id)
        if len(candidates) == 1:
            run = candidates[0]
    if run is None:
        fail(f"no run {run_id}")
    assert run is not None
    return run


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--audit", is_flag=True, help="Every record of the run from the run log, with its offset.")
def show(run_id: str, as_json: bool, audit: bool) -> None:
    """Show one run and its stages (RUN_ID may be a unique prefix)."""
    run = find_run(run_id)
    if audit:
        from hamster.cli.audit import show_run_audit  # the Kafka reader

        show_run_audit(run["run_id"], as_json)
        return
    from hamster.execution.artifacts import ArtifactStore  # fsspec
    from hamster.execution.test_reports import summary_line  # junitparser

    store = ArtifactStore.for_settings(settings_or_exit())
    kept = store.list_run(run["run_id"])
    reports = store.reports(run["run_id"])
    if as_json:
        artifacts = [{"stage": a.stage, "name": a.name, "size": a.size} for a in kept]
        click.echo(json.dumps({**run, "artifacts": artifacts, "tests": reports}, indent=2))
        return
    console = Console()
    console.print(f"[bold]run {run['run_id']}[/bold]  {run['status']}")
    console.print(f"subscriber {run['subscriber']} (version {run['subscriber_version']})")
    console.print(
        f"event      {run['event']}{'.' + run['action'] if run['action'] else ''} on "
        f"{run['repo'] or '-'}, delivery {run['delivery_id']}"
    )
    console.print(f"requested  {run['requested_at']}   finished {run['finished_at'] or '-'}")
    if run["reason"]:
        console.print(f"reason     {run['reason']}")
    table = Table("stage", "needs", "status", "attempt", "duration", "output / error")
    for stage in run["stages"]:
        detail = (
            stage["error"]["type"] + ": " + stage["error"]["message"]
            if stage["error"]
            else json.dumps(stage["output"])
        )
        duration = f"{stage['duration_ms']:.0f} ms" if stage["duration_ms"] is not None else "-"
        # Matrix instances are named like ``unit[python=3.12]``: not Rich markup.
        table.add_row(
            escape(stage["name"]),
            escape(", ".join(stage.get("needs", [])) or "-"),
            stage["status"],
            str(stage["attempt"]),
            duration,
            escape(detail[:200]),
        )
    console.print(table)
    for stage, report in reports.items():
        console.print(f"tests of {stage}: {summary_line(report)}")
        for case in report["failed"]:
            where = f"{case['file']}:{case['line']}" if case["file"] else case["classname"]
            console.print(f"  {case['kind']} {case['classname']}.{case['name']} ({where}): {case['message']}")
    if kept:
        files = Table("artifact", "stage", "size")
        for artifact in kept:
            files.add_row(artifact.name, artifact.stage, f"{artifact.size} B")
        console.print(files)


@runs.command("logs")
@click.argument("run_id")
@click.option("--stage", help="Only this stage's log.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing as the run goes on, until it ends.")
def logs(run_id: str, stage: str | None, follow: bool) -> None:
    """Print what a run's stages printed (RUN_ID may be a unique prefix), a section per attempt."""
    from streams.log_topic import read_run_log  # aiokafka

    settings = settings_or_exit()
    run = find_run(run_id)
    since_ms = int(datetime.fromisoformat(run["requested_at"]).timestamp() * 1000)

    async def show() -> None:
        section = None
        reading = read_run_log(settings, run["run_id"], since_ms=since_ms, follow=follow, stage=stage)
        async for _, chunk in reading:
            if (chunk.stage, chunk.attempt) != section:
                section = (chunk.stage, chunk.attempt)
                sys.stdout.write(f"== {chunk.stage} (attempt {chunk.attempt}) ==\n")
            sys.stdout.write(chunk.text)
            sys.stdout.flush()

    try:
        asyncio.run(show())
    except BrokerError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
