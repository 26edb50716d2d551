"""`hamster audit verify`: recompute the run log's hash chains and compare it with its signed checkpoints;
and the `runs show --audit` listing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from hamster.cli import fail, settings_or_exit
from hamster.cli.progress import progress
from hamster.errors import HamsterError
from hamster.json_codec import loads
from hamster.runs.audit import ChainCheck, Position, Verification, audit_rows
from hamster.runs.audit_checkpoints import Finding, PartitionReport, decode_checkpoint, verify_partition
from hamster.runs.events import RUN_EVENT, RunRequested
from hamster.runs.replay import parse_time
from hamster.settings import Settings
from streams.reader import bounds, partition_for, read_batches, read_topic, topic_size
from streams.topics import audit_checkpoints_topic, run_events_topic


def run_log(
    settings: Settings, *, since_ms: int | None = None, only: list[int] | None = None
) -> Iterator[tuple[Position, dict[str, Any]]]:
    """(position, record JSON as stored) for every record of the run log, in offset order per partition."""
    for record in read_topic(settings.kafka, run_events_topic(settings), since_ms=since_ms, only=only):
        content = stored_json(record.value, record.key)
        position = Position(record.topic, record.partition, record.offset, record.timestamp)
        yield position, content


def stored_json(raw: bytes, key: bytes | None) -> dict[str, Any]:
    """A run-log record's JSON as stored; one that is not a JSON object is kept as a record with no hash,
    so verification names it."""
    try:
        content = loads(raw)
    except ValueError:
        content = None
    if not isinstance(content, dict):
        return {"run_id": (key or b"").decode(errors="replace"), "seq": 0, "hash": "?"}
    return content


async def _verify(
    settings: Settings, since_ms: int | None, quiet: bool, keep: bool
) -> tuple[Verification, list[Any]]:
    """Every chain of the run log, checked as its batches stream past (one held at a time); ``keep``: also
    the records themselves, which the signed checkpoints are compared with (whole partitions, in memory)."""
    topic = run_events_topic(settings)
    check = ChainCheck()
    kept: list[Any] = []
    total = None if since_ms is not None else topic_size(settings.kafka, topic)
    with progress("verifying the run log", total, quiet) as advance:
        async for batch in read_batches(settings.kafka, topic, since_ms=since_ms):
            for record in batch:
                position = Position(record.topic, record.partition, record.offset, record.timestamp)
                check.add(position, stored_json(record.value, record.key))
            if keep:
                kept.extend(batch)
            advance(len(batch))
    return check.result(), kept


@dataclass(frozen=True)
class CheckpointCheck:
    """What the signed checkpoints say about the run log; ``skipped`` says why they were not checked."""

    reports: tuple[PartitionReport, ...] = ()
    found: int = 0  # checkpoint records in the topic
    skipped: str | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.reports for f in r.findings]


def check_checkpoints(settings: Settings, records: list[Any], windowed: bool) -> CheckpointCheck:
    """Compare the run log (``records``, every partition whole) with ``<ns>.audit-checkpoints``."""
    stored = [
        decode_checkpoint(r.value) for r in read_topic(settings.kafka, audit_checkpoints_topic(settings))
    ]
    checkpoints = [c for c in stored if c is not None]
    if settings.audit_key is None:
        return CheckpointCheck(
            found=len(checkpoints),
            skipped=(
                f"HAMSTER_AUDIT_KEY is not set: {len(checkpoints)} checkpoint(s) not checked, so a forged "
                "record re-sealed with its successors, reordered records and a cut-off tail cannot be seen"
            ),
        )
    if windowed:
        return CheckpointCheck(
            found=len(checkpoints), skipped="--since: checkpoints are checked over whole partitions only"
        )
    key = settings.audit_key.get_secret_value().encode()
    by_partition: dict[int, list[tuple[int, bytes | None, bytes | None]]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append((r.offset, r.key, r.value))
    reports = [
        verify_partition(partition, start, by_partition.get(partition, []), checkpoints, key)
        for partition, (start, _end) in sorted(bounds(settings.kafka, run_events_topic(settings)).items())
    ]
    return CheckpointCheck(tuple(reports), len(checkpoints))


@click.group()
def audit() -> None:
    """Check the run log's tamper evidence."""


@audit.command()
@click.option("--since", help="Only records from this time on: ISO time or a time ago (2h, 7d).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(since: str | None, as_json: bool) -> None:
    """Recompute every run's hash chain and compare the log with its signed checkpoints.

    Lists each break in a chain, and each forged (re-sealed), reordered or cut-off range the checkpoints
    reveal (they need HAMSTER_AUDIT_KEY); exits 1 if there is any.
    """
    settings = settings_or_exit()
    try:
        since_ms = int(parse_time(since, datetime.now(UTC)).timestamp() * 1000) if since else None
        keep = settings.audit_key is not None and since is None
        result, kept = asyncio.run(_verify(settings, since_ms, as_json, keep))
        checked = check_checkpoints(settings, kept, windowed=since is not None)
    except HamsterError as exc:
        fail(str(exc), 2)
        return
    ok = result.ok and not checked.findings
    if as_json:
        body = {
            "ok": ok,
            "records": result.records,
            "runs": result.runs,
            "unsealed": result.unsealed,
            "breaks": [asdict(b) for b in result.breaks],
            "checkpoints": {
                "checked": checked.skipped is None,
                "skipped": checked.skipped,
                "found": checked.found,
                "partitions": [
                    {k: v for k, v in asdict(r).items() if k != "findings"} for r in checked.reports
                ],
                "findings": [
                    {**asdict(f), "checkpoint_at": f.checkpoint_at.isoformat()} for f in checked.findings
                ],
            },
        }
        click.echo(json.dumps(body, indent=2))
    else:
        _print_verification(result, checked)
    raise SystemExit(0 if ok else 1)


def _print_verification(result: Verification, checked: CheckpointCheck) -> None:
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
    if checked.skipped is not None:
        console.print(f"[yellow]{checked.skipped}[/yellow]", highlight=False, soft_wrap=True)
        return
    used = sum(r.checkpoints for r in checked.reports)
    compared = sum(r.checked for r in checked.reports)
    uncovered = sum(r.uncovered for r in checked.reports)
    console.print(
        f"checkpoints: {used} signed checkpoint(s) used; {compared} record(s) compared with them"
        + (f"; {uncovered} not covered by a checkpoint (yet)" if uncovered else ""),
        highlight=False,
    )
    for f in checked.findings:
        console.print(f"{f.kind}: partition {f.partition}: {f.message}", highlight=False, soft_wrap=True)
    if checked.findings:
        console.print(f"[bold red]{len(checked.findings)} finding(s) from the checkpoints[/bold red]")
    else:
        console.print("the log matches its checkpoints")


def show_run_audit(run_id: str, as_json: bool) -> None:
    """Every record of one run, from the run log, with where it is and what it did."""
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
    trust = next((r.trust for _, r in records if isinstance(r, RunRequested) and r.trust is not None), None)
    if trust is not None:  # whether the run had its secrets (hamster.github.forks)
        said = [
            trust.reason,
            *([f"by {trust.by}"] if trust.by else []),
            *([f"head {trust.head_repo}"] if trust.head_repo else []),
        ]
        console.print(f"{'trusted' if trust.trusted else 'untrusted'}: {', '.join(said)}", markup=False)
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
