"""The SQL projection of the run log: runs and their stages, for ``hamster runs`` and the dashboard.

Idempotent by construction: each record's (topic, partition, offset) is stored in the same transaction as
the rows it changed, and a record at or below the stored offset is skipped. Rows are written from the run
state folded by the one state machine (``hamster.lifecycle.evolve``), so the view can never disagree with
the log's rules.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection, make_url

from hamster import migrations
from hamster.errors import InvalidTransition
from hamster.lifecycle import RunState, evolve
from hamster.run_events import RunEvent

log = logging.getLogger(__name__)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("subscriber", String(100), nullable=False, index=True),
    Column("subscriber_version", String(32), nullable=False),
    Column("repo", String(200), index=True),
    Column("event", String(100), nullable=False),
    Column("action", String(100)),
    Column("delivery_id", String(64), nullable=False, index=True),
    Column("sha", String(64)),
    Column("branch", String(255)),
    Column("pr_number", Integer),
    Column("status", String(16), nullable=False, index=True),
    Column("reason", Text),
    Column("requested_at", DateTime(timezone=True), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("seq", Integer, nullable=False),
    Column("state", JSON, nullable=False),  # the folded RunState, to apply the next record to
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
    engine = create_engine(url, connect_args={"timeout": 30} if is_sqlite else {})
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

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
        "state": json.loads(state.model_dump_json()),
    }


def missing_before(conn: Connection, record: RunEvent) -> bool:
    """True when the view lacks records of this run that come before ``record`` (a gap in its sequence)."""
    row = conn.execute(select(runs.c.seq).where(runs.c.run_id == record.run_id)).scalar_one_or_none()
    if row is None:
        return record.type != "RunRequested"
    return bool(record.seq > row + 1)


def apply(
    conn: Connection, topic: str, partition: int, offset: int, record: RunEvent, *, track: bool = True
) -> bool:
    """Apply one run-log record inside the caller's transaction. False when it was already applied.

    ``track=False`` applies a record read back to fill a gap: the sequence number alone keeps it
    idempotent, and the partition's applied offset is left where it is.
    """
    done = conn.execute(
        select(applied_offsets.c.offset).where(
            applied_offsets.c.topic == topic, applied_offsets.c.partition == partition
        )
    ).scalar_one_or_none()
    if track and done is not None and offset <= done:
        return False
    row = conn.execute(select(runs.c.state).where(runs.c.run_id == record.run_id)).scalar_one_or_none()
    current = RunState.model_validate(row) if row is not None else None
    changed = True
    try:
        new = evolve(current, record)
    except InvalidTransition as exc:
        # A record written twice (a worker crashed between writing it and committing its offset) has a
        # sequence number already applied: the view already shows it.
        if current is not None and record.seq <= current.seq:
            changed = False
        else:
            log.error("projection: %s (offset %s/%s/%s)", exc, topic, partition, offset)
            changed = False
    if changed:
        if current is None:
            conn.execute(runs.insert().values(**_run_row(new)))
        else:
            conn.execute(runs.update().where(runs.c.run_id == new.run_id).values(**_run_row(new)))
        for position, stage in enumerate(new.stages):
            if current is not None and current.stages[position] == stage:
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
            if current is None:
                conn.execute(stages.insert().values(run_id=new.run_id, position=position, **values))
            else:
                conn.execute(
                    stages.update()
                    .where(stages.c.run_id == new.run_id, stages.c.position == position)
                    .values(**values)
                )
    if not track:
        return changed
    if done is None:
        conn.execute(applied_offsets.insert().values(topic=topic, partition=partition, offset=offset))
    else:
        conn.execute(
            applied_offsets.update()
            .where(applied_offsets.c.topic == topic, applied_offsets.c.partition == partition)
            .values(offset=offset)
        )
    return changed


def apply_batch(engine: Engine, topic: str, items: list[tuple[int, int, RunEvent]]) -> int:
    """Apply records in one transaction; returns how many changed the view."""
    with engine.begin() as conn:
        return sum(apply(conn, topic, partition, offset, rec) for partition, offset, rec in items)


def clear(conn: Connection) -> None:
    """Empty the view and its applied offsets, inside the caller's transaction: a rebuild starts here."""
    for table in (stages, runs, applied_offsets):
        conn.execute(table.delete())
