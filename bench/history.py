"""Section 4, replay, dry run and projection rebuild, timed through Hamster's own commands.

- ``hamster replay events --dry-run --subscribers bench.pipeline`` over a fresh namespace's 100,000 recorded
  webhooks, each of which started its run (a ``RunRequested`` in the run log): what a dry run of an
  unchanged configuration costs, the run log's starts read too.
- ``hamster replay events --wait 0`` over the same webhooks (written back as replays, each acknowledged).
- ``hamster projection rebuild --into <fresh sqlite>`` and ``--into <fresh PostgreSQL database>`` over a run
  log of complete 3-stage runs, sealed as the run recorder seals them.

Topics are filled first (untimed). Commands are timed on the wall clock, their start-up included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from bench.harness import PYTHON, REPO_ROOT, namespace
from bench.payloads import bodies, headers
from bench.stats import rate
from hamster import ids
from hamster.intake.envelope import EventEnvelope, encode_envelope, kafka_headers, parse_webhook
from hamster.intake.github_events import event_info
from hamster.runs.audit import seal
from hamster.runs.events import (
    RunEvent,
    RunRequested,
    RunSucceeded,
    StageStarted,
    StageSucceeded,
    encode_run_event,
)
from hamster.settings import Settings, load_settings
from streams.admin import ensure_topics
from streams.topics import MAX_MESSAGE_BYTES, events_topic, run_events_topic, topic_specs

if TYPE_CHECKING:  # the contract tests' throwaway server, imported only where a section needs it
    from tests.postgres import LocalPostgres

log = logging.getLogger("bench.history")

PIPELINE = ("noop_one", "noop_two", "noop_three")
SUBSCRIBER = "bench-noop"  # bench.pipeline's subscriber: it matches every recorded webhook
RECORDS_PER_RUN = 8
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


async def produce_all(bootstrap: str, topic: str, records: Iterable[Record]) -> None:
    """Write ``records`` (key, value, headers) acknowledged, in batches (linger), as fast as Kafka takes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
        linger_ms=5,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    try:
        pending = []
        for key, value, hdrs in records:
            pending.append(await producer.send(topic, value=value, key=key, headers=hdrs))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _webhooks(count: int, started: list[RunRequested]) -> Iterator[Record]:
    """``count`` recorded pull_request webhooks; the RunRequested each started goes to ``started``."""
    pool = [parse_webhook(headers(body), body.raw, datetime.now(UTC)) for body in bodies()]
    for i in range(count):
        envelope = pool[i % len(pool)].model_copy(update={"delivery_id": str(uuid.uuid4())})
        started.append(_requested(envelope))
        yield envelope.key.encode(), encode_envelope(envelope), kafka_headers(envelope)


def _requested(envelope: EventEnvelope) -> RunRequested:
    # RunRequested carries the trigger without its payload, as the match agent writes it.
    info = event_info(envelope.event, envelope.delivery_id, envelope.payload).model_copy(
        update={"payload": {}}
    )
    run_id = ids.run_id(envelope.delivery_id, SUBSCRIBER)
    return RunRequested(
        event_id=ids.event_id(run_id, 1), run_id=run_id, seq=1, subscriber=SUBSCRIBER,
        subscriber_version="v", pipeline=PIPELINE, event=info,
    )  # fmt: skip


def run_log(runs: int, start: datetime | None = None) -> Iterator[Record]:
    """The run log of ``runs`` complete 3-stage runs (8 records each), sealed as the run recorder seals
    them, runs interleaved in small groups as concurrent runs write them; requested a second apart."""
    body = json.loads(bodies()[0].raw)
    info = event_info("pull_request", "-", body).model_copy(update={"payload": {}})
    start = start or datetime.now(UTC) - timedelta(seconds=runs)
    group: list[list[RunEvent]] = []
    for n in range(runs):
        run = ids.run_id(str(uuid.uuid4()), SUBSCRIBER)
        at = start + timedelta(seconds=n)
        kinds: list[tuple[Any, dict[str, Any]]] = [
            (RunRequested, {"subscriber": SUBSCRIBER, "subscriber_version": "v", "pipeline": PIPELINE,
                            "event": info.model_copy(update={"delivery_id": str(uuid.uuid4())})}),
        ]  # fmt: skip
        for i, stage in enumerate(PIPELINE):
            kinds.append((StageStarted, {"stage": stage, "index": i, "attempt": 1}))
            kinds.append((StageSucceeded, {"stage": stage, "index": i, "attempt": 1, "duration_ms": 0.1}))
        kinds.append((RunSucceeded, {}))
        records, prev = [], ""
        for seq, (kind, fields) in enumerate(kinds, start=1):
            record = seal(
                kind(event_id=ids.event_id(run, seq), run_id=run, seq=seq, occurred_at=at, **fields), prev
            )
            prev = record.hash
            records.append(record)
        group.append(records)
        if len(group) == 4 or n == runs - 1:
            for step in zip(*group, strict=True):
                for record in step:
                    yield record.run_id.encode(), encode_run_event(record), []
            group = []


def hamster(env: dict[str, str], *args: str, timeout: float, json_out: bool = True) -> tuple[float, Any]:
    """Run a `hamster` command; (wall-clock seconds, its --json answer). The time includes its start-up."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "hamster.cli", *args, *(["--json"] if json_out else [])],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(
            f"hamster {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        )
    return seconds, json.loads(done.stdout) if json_out else done.stdout


def fresh_namespace(bootstrap: str, home: Path, partitions: int) -> tuple[Settings, dict[str, str]]:
    settings = load_settings(
        kafka_bootstrap=bootstrap, namespace=namespace(), partitions=partitions, home=home
    )
    ensure_topics(settings.kafka, topic_specs(settings))
    env = {
        "HAMSTER_KAFKA_BOOTSTRAP": bootstrap,
        "HAMSTER_NAMESPACE": settings.namespace,
        "HAMSTER_PARTITIONS": str(partitions),
        "HAMSTER_HOME": str(home / settings.namespace),
    }
    return settings, env


def run(
    bootstrap: str, home: Path, *, partitions: int, events: int, records: int, postgres: LocalPostgres
) -> dict[str, Any]:
    settings, env = fresh_namespace(bootstrap, home, partitions)
    started: list[RunRequested] = []
    asyncio.run(produce_all(bootstrap, events_topic(settings), _webhooks(events, started)))
    asyncio.run(
        produce_all(
            bootstrap,
            run_events_topic(settings),
            ((r.run_id.encode(), encode_run_event(r), []) for r in started),
        )
    )
    del started
    dry_s, diff = hamster(
        env, "replay", "events", "--dry-run", "--subscribers", "bench.pipeline", timeout=1800
    )
    log.info("hamster replay events --dry-run: %d events in %.1f s", diff["events"], dry_s)
    replay_s, answer = hamster(env, "replay", "events", "--wait", "0", timeout=1800)
    replayed = int(answer["events_replayed"])
    log.info("hamster replay events: %d replayed in %.1f s", replayed, replay_s)

    settings, env = fresh_namespace(bootstrap, home, partitions)
    asyncio.run(produce_all(bootstrap, run_events_topic(settings), run_log(records // RECORDS_PER_RUN)))
    into = f"sqlite:///{home / (settings.namespace + '-rebuild.db')}"
    rebuild_s, summary = hamster(env, "projection", "rebuild", "--into", into, timeout=1800)
    log.info("hamster projection rebuild (sqlite): %d records in %.1f s", summary["records"], rebuild_s)
    pg_url = postgres.create_database(settings.namespace)
    pg_s, pg_summary = hamster(env, "projection", "rebuild", "--into", pg_url, timeout=1800)
    log.info("hamster projection rebuild (PostgreSQL): %d records in %.1f s", pg_summary["records"], pg_s)
    return {
        "replay": {
            "events_per_s": rate(replayed, replay_s),
            "events": replayed,
            "seconds": replay_s,
            "method": "`hamster replay events --wait 0` over every recorded pull_request webhook (24-27 KB) "
            "of a fresh namespace, wall clock including the command's start-up",
            "dry_run_events_per_s": rate(int(diff["events"]), dry_s),
            "dry_run_events": diff["events"],
            "dry_run_unchanged": diff["unchanged"],
            "dry_run_seconds": dry_s,
            "dry_run_method": "`hamster replay events --dry-run --subscribers bench.pipeline` over the same "
            "webhooks, each of which started its run (a RunRequested in the run log, read too), wall clock "
            "including the command's start-up",
        },
        "projection": {
            "records_per_s": rate(int(summary["records"]), rebuild_s),
            "records": summary["records"],
            "applied": summary["applied"],
            "seconds": rebuild_s,
            "postgres_records_per_s": rate(int(pg_summary["records"]), pg_s),
            "postgres_seconds": pg_s,
            "method": "`hamster projection rebuild --into <fresh sqlite | fresh PostgreSQL database>` over "
            "complete 3-stage runs, sealed, wall clock including the command's start-up; PostgreSQL is "
            "Debian's, local, fsync off (tests/postgres.py)",
        },
    }
