"""The SQL projection of the run log: runs and their stages, for ``hamster runs`` and the dashboard.

Idempotent by construction: each record's (topic, partition, offset) is stored in the same transaction as
the rows it changed, and a record at or below the stored offset is skipped. Records are applied in batches
(``apply_records``): folded per run in memory, each changed row written once with prepared statements.
Rows are written from the run state folded by the one state machine (``hamster.runs.lifecycle.evolve``), so
the view can never disagree with the log's rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.expression import Executable

from hamster import json_codec
from hamster.errors import InvalidTransition
from hamster.projection import migrations
from hamster.runs.events import RunEvent
from hamster.runs.lifecycle import RunState, evolve

log = logging.getLogger(__name__)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("subscriber", String(100), nullable=False),
    Column("subscriber_version", String(32), nullable=False),
    Column("repo", String(200)),
    Column("event", String(100), nullable=False),
    Column("action", String(100)),
    Column("delivery_id", String(64), nullable=False, index=True),
    Column("sha", String(64)),
    Column("branch", String(255)),
    Column("pr_number", Integer),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("seq", Integer, nullable=False),
    Column("state", JSON, nullable=False),  # the folded RunState, to apply the next record to
    # Newest first, then the page after a (requested_at, run_id) cursor: all runs, or of one repository,
    # subscriber or status (hamster.projection.queries; migration 0002).
    Index("ix_runs_newest", "requested_at", "run_id"),
    Index("ix_runs_repo_newest", "repo", "requested_at", "run_id"),
    Index("ix_runs_subscriber_newest", "subscriber", "requested_at", "run_id"),
    Index("ix_runs_status_newest", "status", "requested_at", "run_id"),
)

stages = Table(
    "stages",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("output", JSON),
    Column("error", JSON),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_ms", Float),
)

applied_offsets = Table(
    "applied_offsets",
    metadata,
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", Integer, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for the projection, its schema upgraded to the newest migration.

    sqlite gets WAL and a busy timeout so several workers can share it.
    """
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(("postgresql://", "postgres://")):
        # The driver Hamster installs is psycopg 3; SQLAlchemy's default for a bare postgresql:// is psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(
        url,
        connect_args={"timeout": 30} if is_sqlite else {},
        # The JSON columns (a run's folded state, stage outputs and errors) written by orjson: a rebuild
        # writes one state per run per batch, and the stdlib's encoder was a tenth of its time.
        json_serializer=json_codec.dumps,
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    if not migrations.at_head(engine):
        migrations.upgrade(engine)
    return engine


def _run_row(state: RunState) -> dict[str, Any]:
    return {
        "run_id": state.run_id,
        "subscriber": state.subscriber,
        "subscriber_version": state.subscriber_version,
        "repo": state.event.repo,
        "event": state.event.name,
        "action": state.event.action,
        "delivery_id": state.event.delivery_id,
        "sha": state.event.sha,
        "branch": state.event.branch,
        "pr_number": state.event.pr_number,
        "status": state.status,
        "reason": state.reason,
        "requested_at": state.requested_at,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "seq": state.seq,
        "state": state.model_dump(mode="json"),
    }


def missing_before(conn: Connection, record: RunEvent) -> bool:
    """True when the view lacks records of this run that come before ``record`` (a gap in its sequence)."""
    row = conn.execute(select(runs.c.seq).where(runs.c.run_id == record.run_id)).scalar_one_or_none()
    if row is None:
        return record.type != "RunRequested"
    return bool(record.seq > row + 1)


Item = tuple[int, int, RunEvent]
"""A run-log record at its (partition, offset)."""

_IN_CHUNK = 500  # ids per ``IN (...)``: well under every database's limit on bound parameters


def apply(
    conn: Connection, topic: str, partition: int, offset: int, record: RunEvent, *, track: bool = True
) -> bool:
    """Apply one run-log record inside the caller's transaction. False when it was already applied.

    ``track=False`` applies a record read back to fill a gap: the sequence number alone keeps it
    idempotent, and the partition's applied offset is left where it is.
    """
    return apply_records(conn, topic, [(partition, offset, record)], track=track) > 0


def apply_records(conn: Connection, topic: str, items: Sequence[Item], *, track: bool = True) -> int:
    """Apply records (in offset order per partition) inside the caller's transaction; how many changed it.

    The batch is folded in memory, run by run, from the states the view holds, with the one state
    machine; then each run row and each stage row it changed is written once, with one prepared
    statement per kind of write (executemany), and each partition's applied offset once. A record at or
    below its partition's applied offset is skipped (``track=False``: none is, and offsets stay).
    The rows are those applying the records one at a time would leave: the fold is the same.
    """
    done = _applied(conn, topic, {partition for partition, _, _ in items}) if track else {}
    fresh = [item for item in items if item[0] not in done or item[1] > done[item[0]]]
    before = _states(conn, {record.run_id for _, _, record in fresh})
    after = dict(before)
    changed = 0
    for partition, offset, record in fresh:
        current = after.get(record.run_id)
        try:
            after[record.run_id] = evolve(current, record)
        except InvalidTransition as exc:
            # A record written twice (a worker crashed between writing it and committing its offset) has a
            # sequence number already applied: the view already shows it.
            if current is None or record.seq > current.seq:
                log.error("projection: %s (offset %s/%s/%s)", exc, topic, partition, offset)
            continue
        changed += 1
    _write_rows(
        conn, before, {run_id: state for run_id, state in after.items() if state is not before.get(run_id)}
    )
    if track and fresh:
        last: dict[int, int] = {}
        for partition, offset, _ in fresh:
            last[partition] = offset
        _executemany(
            conn,
            applied_offsets.insert(),
            [{"topic": topic, "partition": p, "offset": o} for p, o in last.items() if p not in done],
        )
        _executemany(
            conn,
            applied_offsets.update()
            .where(applied_offsets.c.topic == topic, applied_offsets.c.partition == bindparam("b_partition"))
            .values(offset=bindparam("b_offset")),
            [{"b_partition": p, "b_offset": o} for p, o in last.items() if p in done],
        )
    return changed


def apply_batch(engine: Engine, topic: str, items: list[Item]) -> int:
    """Apply records in one transaction; returns how many changed the view."""
    with engine.begin() as conn:
        return apply_records(conn, topic, items)


def _applied(conn: Connection, topic: str, partitions: set[int]) -> dict[int, int]:
    if not partitions:
        return {}
    query = select(applied_offsets.c.partition, applied_offsets.c.offset).where(
        applied_offsets.c.topic == topic, applied_offsets.c.partition.in_(sorted(partitions))
    )
    return {int(p): int(o) for p, o in conn.execute(query)}


def _states(conn: Connection, run_ids: set[str]) -> dict[str, RunState]:
    """The folded state the view holds for each of ``run_ids`` it has."""
    ids = sorted(run_ids)
    found: dict[str, RunState] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        query = select(runs.c.run_id, runs.c.state).where(runs.c.run_id.in_(ids[i : i + _IN_CHUNK]))
        for run_id, state in conn.execute(query):
            found[run_id] = RunState.model_validate(state)
    return found


def _write_rows(conn: Connection, before: dict[str, RunState], changed: dict[str, RunState]) -> None:
    """Each changed run's row, and each of its stage rows that differs from ``before``, written once."""
    new_runs, old_runs, new_stages, old_stages = [], [], [], []
    for run_id, state in changed.items():
        row = _run_row(state)
        previous = before.get(run_id)
        if previous is None:
            new_runs.append(row)
        else:
            old_runs.append({("b_run_id" if k == "run_id" else k): v for k, v in row.items()})
        for position, stage in enumerate(state.stages):
            if (
                previous is not None
                and position < len(previous.stages)
                and previous.stages[position] == stage
            ):
                continue
            values = {
                "name": stage.name,
                "status": stage.status,
                "attempt": stage.attempt,
                "output": stage.output,
                "error": stage.error,
                "started_at": stage.started_at,
                "finished_at": stage.finished_at,
                "duration_ms": stage.duration_ms,
            }
            if previous is None or position >= len(previous.stages):
                new_stages.append({"run_id": run_id, "position": position, **values})
            else:
                old_stages.append({"b_run_id": run_id, "b_position": position, **values})
    _executemany(conn, runs.insert(), new_runs)
    _executemany(conn, runs.update().where(runs.c.run_id == bindparam("b_run_id")), old_runs)
    _executemany(conn, stages.insert(), new_stages)
    _executemany(
        conn,
        stages.update().where(
            stages.c.run_id == bindparam("b_run_id"), stages.c.position == bindparam("b_position")
        ),
        old_stages,
    )


def _executemany(conn: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """One prepared statement for all ``rows`` (SQLAlchemy batches INSERTs into multi-row VALUES and hands
    UPDATEs to the driver's executemany); nothing when there are none."""
    if rows:
        conn.execute(statement, rows)


def clear(conn: Connection) -> None:
    """Empty the view and its applied offsets, inside the caller's transaction: a rebuild starts here."""
    for table in (stages, runs, applied_offsets):
        conn.execute(table.delete())
