"""`hamster replay events|run`: re-emit recorded webhooks, dry-run a subscribers change, rerun a run.

The decisions are ``hamster.runs.replay``'s and the reading ``streams.reader``'s (one fetched batch held at
a time); this module writes the replays (each batch's writes acknowledged together) and prints.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.console import Console

from hamster.cli import fail, settings_or_exit
from hamster.cli.progress import progress
from hamster.errors import BrokerError, HamsterError
from hamster.intake.envelope import encode_envelope, kafka_headers
from hamster.kafka_access import aiokafka_options
from hamster.runs.events import RunRequested
from hamster.runs.replay import (
    DryRun,
    DryRunRow,
    EventFilter,
    dry_run,
    nothing_to_match,
    parse_time,
    replay_headers,
    replayed,
    retention_warning,
    would_start,
)
from hamster.settings import Settings
from hamster.subscribers.matching import SubscriberIndex
from hamster.subscribers.spec import SubscriberSpec, load_catalog
from streams.reader import (
    log_start,
    run_requests,
    selected_events,
    starts_by_delivery,
    subscribers_now,
    topic_size,
)
from streams.rerun import rerun_run
from streams.topics import MAX_MESSAGE_BYTES, events_topic


@dataclass(frozen=True)
class Plan:
    """What a replay (or a dry run) reads and matches: the events topic from ``since_ms`` (with ``total``
    records to expect, when known), the webhooks ``selection`` selects, and the subscribers to match them
    against (with their ``when`` predicates)."""

    settings: Settings
    topic: str
    since_ms: int | None
    total: int | None
    selection: EventFilter
    specs: list[SubscriberSpec]
    predicates: dict[str, Any]


def _plan(settings: Settings, selection: EventFilter, module: str | None) -> Plan:
    """Where to read from and what to match against; warns (or stops) when retention cut the range."""
    specs, predicates = _subscribers(settings, module)
    topic = events_topic(settings)
    oldest_ms, trimmed = log_start(settings.kafka, topic)
    oldest = datetime.fromtimestamp(oldest_ms / 1000, UTC) if oldest_ms is not None else None
    warning = retention_warning(selection.since, oldest, trimmed, settings.retention_days)
    if warning:
        if selection.until is not None and oldest is not None and selection.until <= oldest:
            fail(warning)
        click.echo(f"warning: {warning}", err=True)
    # Seek by time: the broker finds each partition's first record stamped at or after --since. The intake
    # stamps a record after it set received_at, so nothing in the range is skipped; the filter then checks
    # received_at exactly. A minute of slack covers an intake whose clock differs from the broker's.
    since_ms = int(selection.since.timestamp() * 1000) - 60_000 if selection.since else None
    # Reading from --since, the topic's size over-counts: the progress then just counts.
    total = None if since_ms is not None else topic_size(settings.kafka, topic)
    return Plan(settings, topic, since_ms, total, selection, specs, predicates)


def _subscribers(settings: Settings, module: str | None) -> tuple[list[SubscriberSpec], dict[str, Any]]:
    """Specs and ``when`` predicates: from MODULE, else the live subscribers table (enabled ones)."""
    if module:
        catalog = load_catalog(module)
        return list(catalog.specs), {s.name: s.when for s in catalog.subscribers if s.when is not None}
    table = subscribers_now(settings)
    predicates: dict[str, Any] = {}
    if settings.subscribers:
        # ``when`` predicates are code: they come from the workers' module, when this machine has it.
        try:
            catalog = load_catalog(settings.subscribers)
            predicates = {s.name: s.when for s in catalog.subscribers if s.when is not None}
        except HamsterError as exc:
            click.echo(f"warning: predicates not loaded: {exc}", err=True)
    return [s.spec for s in table.values() if s.enabled], predicates


def _print_dry_run(result: DryRun, as_json: bool) -> None:
    if as_json:
        rows = [
            {**row.__dict__, "received_at": row.received_at.isoformat()}
            for row in result.rows
            if row.verdict != "same"
        ]
        click.echo(
            json.dumps(
                {
                    "events": result.events,
                    "would_start": len(result.of("new")) + len(result.of("same")),
                    "did_start": len(result.of("gone")) + len(result.of("same")),
                    "unchanged": len(result.of("same")),
                    "new": [r for r in rows if r["verdict"] == "new"],
                    "gone": [r for r in rows if r["verdict"] == "gone"],
                },
                indent=2,
            )
        )
        return
    console = Console()
    for verdict, title in (("new", "would start, did not"), ("gone", "did start, would not")):
        found = result.of(verdict)  # type: ignore[arg-type]
        console.print(f"[bold]{title}: {len(found)} run(s)[/bold]")
        for row in found:
            event = row.event + (f".{row.action}" if row.action else "")
            console.print(
                f"  {row.received_at.isoformat()[:19]}  {row.delivery_id}  {event} on {row.repo or '-'}"
                f"  → {row.subscriber}",
                highlight=False,
                soft_wrap=True,
            )
    console.print(f"{result.events} event(s); {len(result.of('same'))} run(s) unchanged")


@click.group()
def replay() -> None:
    """Replay recorded webhooks into matching, or rerun a run. Replays report nothing to GitHub."""


@replay.command("events")
@click.option("--since", help="From this time: ISO time or a time ago (2h, 7d).")
@click.option("--until", help="Before this time: ISO time or a time ago.")
@click.option("--repo", "repos", multiple=True, help="Only this repository (owner/name; globs allowed).")
@click.option("--event", "events", multiple=True, help="Only this GitHub event (push, pull_request, ...).")
@click.option("--action", "actions", multiple=True, help="Only this action (opened, ...).")
@click.option("--delivery", "deliveries", multiple=True, help="Only this delivery id (repeatable).")
@click.option("--dry-run", is_flag=True, help="Start nothing: compare what would start with what did.")
@click.option("--subscribers", "module", help="With --dry-run: match against this subscribers module.")
@click.option("--report", is_flag=True, help="Let the replayed runs report to GitHub.")
@click.option(
    "--wait", default=60.0, show_default=True, help="Seconds to wait for the runs to start (0: no)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def events(
    since: str | None,
    until: str | None,
    repos: tuple[str, ...],
    events: tuple[str, ...],
    actions: tuple[str, ...],
    deliveries: tuple[str, ...],
    dry_run: bool,
    module: str | None,
    report: bool,
    wait: float,
    as_json: bool,
) -> None:
    """Re-emit recorded webhooks; each replay gets a new delivery id linked to the original."""
    settings = settings_or_exit()
    if module and not dry_run:
        fail("--subscribers only goes with --dry-run", 2)
    now = datetime.now(UTC)
    try:
        selection = EventFilter(
            since=parse_time(since, now) if since else None,
            until=parse_time(until, now) if until else None,
            repos=repos,
            events=events,
            actions=actions,
            deliveries=tuple(str(d).lower() for d in deliveries),
        )
        plan = _plan(settings, selection, module)
        if dry_run:
            started = asyncio.run(starts_by_delivery(settings))
            _print_dry_run(asyncio.run(_dry_run(plan, started, as_json)), as_json)
            return
        _replay(plan, report, wait, as_json)
    except HamsterError as exc:
        fail(str(exc), 2)


async def _dry_run(plan: Plan, started: dict[str, set[str]], quiet: bool) -> DryRun:
    """Match the selected webhooks as they stream past; one fetched batch is held at a time. A webhook
    that can have no rows (``nothing_to_match``) is counted, never decoded."""
    events = 0
    rows: list[DryRunRow] = []
    reading = selected_events(
        plan.settings.kafka,
        plan.topic,
        plan.selection,
        since_ms=plan.since_ms,
        undecoded=lambda headers: nothing_to_match(plan.selection, plan.specs, started, headers),
    )
    with progress("matching webhooks", plan.total, quiet) as advance:
        async for batch in reading:
            part = dry_run(batch.envelopes, plan.specs, plan.predicates, started)
            events += batch.undecoded + part.events
            rows.extend(part.rows)
            advance(batch.read)
    return DryRun(events=events, rows=tuple(rows))


def _replay(plan: Plan, report: bool, wait: float, as_json: bool) -> None:
    started_ms = int(time.time() * 1000)
    read, links, expected = asyncio.run(_append_replays(plan, report, as_json))
    runs = _wait_for_runs(plan.settings, set(links), expected, wait, started_ms) if wait > 0 else []
    if as_json:
        summary = {
            "events_read": read,
            "events_replayed": len(links),
            "runs_expected": expected,
            "runs_started": len(runs),
            "replays": [{"delivery_id": new, "replay_of": old} for new, old in links.items()],
            "runs": [
                {"run_id": r.run_id, "subscriber": r.subscriber, "replay_of": r.replay_of} for r in runs
            ],
        }
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"{read} webhook(s) read, {len(links)} replayed; "
        + (
            f"{len(runs)} run(s) started (of {expected} expected)"
            if wait > 0
            else f"{expected} run(s) expected"
        )
    )


async def _append_replays(plan: Plan, report: bool, quiet: bool) -> tuple[int, dict[str, str], int]:
    """Stream the topic, append a copy of each selected webhook; (records read, replay id → original
    delivery id, runs expected).

    Each fetched batch is written as a batch: every send is handed to the producer, then all of its
    acknowledgements are awaited together before the next batch is read (the idempotent producer keeps
    each partition's order). Only one batch of envelopes is ever held.
    """
    settings = plan.settings
    index = SubscriberIndex(plan.specs)
    headers = replay_headers(report)
    read = expected = 0
    links: dict[str, str] = {}
    producer = AIOKafkaProducer(
        **aiokafka_options(settings.kafka),
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
        linger_ms=5,
        max_batch_size=1024 * 1024,
    )
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise BrokerError(f"cannot reach Kafka at {settings.kafka.describe()}: {exc}") from exc
    try:
        with progress("replaying webhooks", plan.total, quiet) as advance:
            reading = selected_events(settings.kafka, plan.topic, plan.selection, since_ms=plan.since_ms)
            async for batch in reading:
                read += batch.read
                pending = []
                for original in batch.envelopes:
                    copy = replayed(original, datetime.now(UTC))
                    pending.append(
                        await producer.send(
                            plan.topic,
                            key=copy.key.encode(),
                            value=encode_envelope(copy),
                            headers=kafka_headers(copy) + headers,
                        )
                    )
                    links[copy.delivery_id] = original.delivery_id
                    expected += len(would_start(copy, index, plan.predicates))
                try:
                    await asyncio.gather(*pending)
                except KafkaError as exc:
                    raise BrokerError(f"write to {plan.topic} failed: {exc}") from exc
                advance(batch.read)
    finally:
        await producer.stop()
    return read, links, expected


def _wait_for_runs(
    settings: Settings, deliveries: set[str], expected: int, wait: float, since_ms: int
) -> list[RunRequested]:
    """The runs the replayed deliveries started, once ``expected`` appeared or ``wait`` seconds passed."""
    deadline = time.monotonic() + wait
    while True:
        # Record timestamps come from the workers' clocks; a minute of slack covers a skewed one.
        requests = asyncio.run(run_requests(settings, since_ms - 60_000))
        runs = _unique(r for r in requests if r.event.delivery_id in deliveries)
        if len(runs) >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(1.0)


def _unique(requests: Iterable[RunRequested]) -> list[RunRequested]:
    return list({r.run_id: r for r in requests}.values())


@replay.command("run")
@click.argument("run_id")
@click.option(
    "--from-stage", help="Start at this stage (name or 1-based number); earlier outputs are reused."
)
@click.option("--report", is_flag=True, help="Let the new run report to GitHub.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def run(run_id: str, from_stage: str | None, report: bool, as_json: bool) -> None:
    """Rerun RUN_ID as its next attempt, with the configuration and context it was recorded with."""
    settings = settings_or_exit()
    try:
        new = rerun_run(settings, run_id, from_stage, report)
    except HamsterError as exc:
        fail(str(exc), 2)
        return
    if as_json:
        body = {
            "run_id": new.run_id,
            "original_run_id": new.original_run_id,
            "attempt": new.attempt,
            "from_stage": new.pipeline[new.start_index],
            "reused": sorted(new.reused_outputs),
        }
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(
        f"run {new.run_id}: attempt {new.attempt} of run {new.original_run_id}, "
        f"from stage {new.pipeline[new.start_index]}"
        + (f" (reusing {', '.join(new.reused_outputs)})" if new.reused_outputs else "")
    )
