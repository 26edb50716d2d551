"""Reading the projection: runs as plain dicts, the shape ``hamster runs --json`` and the API print."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from hamster.projection.sql import runs, stages


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # sqlite hands back naive datetimes; everything Hamster stores is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _graph(row: Any) -> list[dict[str, Any]]:
    """Each stage's place in the graph, from the folded state (a line when the state predates graphs)."""
    folded = row.state.get("stages", []) if isinstance(row.state, dict) else []
    return [
        {
            "needs": list(s.get("needs") or ([folded[i - 1]["name"]] if i and "needs" not in s else [])),
            "params": s.get("params") or {},
            "approval": bool(s.get("approval")),
        }
        for i, s in enumerate(folded)
    ]


def _run_dict(row: Any, stage_rows: list[Any]) -> dict[str, Any]:
    graph = _graph(row)
    return {
        "run_id": row.run_id,
        "subscriber": row.subscriber,
        "subscriber_version": row.subscriber_version,
        "repo": row.repo,
        "event": row.event,
        "action": row.action,
        "delivery_id": row.delivery_id,
        "sha": row.sha,
        "branch": row.branch,
        "pr_number": row.pr_number,
        "status": row.status,
        "reason": row.reason,
        "requested_at": _iso(row.requested_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "attempt": s.attempt,
                "output": s.output,
                "error": s.error,
                "started_at": _iso(s.started_at),
                "finished_at": _iso(s.finished_at),
                "duration_ms": s.duration_ms,
                **(
                    graph[s.position]
                    if s.position < len(graph)
                    else {"needs": [], "params": {}, "approval": False}
                ),
            }
            for s in sorted(stage_rows, key=lambda s: s.position)
        ],
    }


def list_runs(
    engine: Engine,
    *,
    repo: str | None = None,
    status: str | None = None,
    subscriber: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> list[dict[str, Any]]:
    """Runs, newest first (ties by run id); ``cursor``: only those after that point of the order.

    Keyset pagination: a page is the ``limit`` runs after the cursor of the page before's last run
    (``next_cursor``), found by walking an index (migration 0002) from there, so it costs the same deep
    in 100,000 runs as on the first page, and runs that arrive meanwhile (newer) never shift a page.
    Raises ``ValueError`` for a cursor this function did not make.
    """
    query = select(runs).order_by(runs.c.requested_at.desc(), runs.c.run_id.desc())
    if repo:
        query = query.where(runs.c.repo == repo)
    if status:
        query = query.where(runs.c.status == status)
    if subscriber:
        query = query.where(runs.c.subscriber == subscriber)
    if cursor is not None:
        at, run_id = decode_cursor(cursor)
        query = query.where(
            or_(runs.c.requested_at < at, and_(runs.c.requested_at == at, runs.c.run_id < run_id))
        )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        ids = [r.run_id for r in rows]
        stage_rows = conn.execute(select(stages).where(stages.c.run_id.in_(ids))).all() if ids else []
    by_run: dict[str, list[Any]] = {}
    for s in stage_rows:
        by_run.setdefault(s.run_id, []).append(s)
    return [_run_dict(r, by_run.get(r.run_id, [])) for r in rows]


def next_cursor(page: list[dict[str, Any]], limit: int) -> str | None:
    """The cursor of the page after ``page`` (asked with ``limit``), or None when it was the last."""
    if len(page) < limit or not page:
        return None
    last = page[-1]
    text = f"{last['requested_at']}|{last['run_id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(requested_at, run_id) of a cursor from ``next_cursor``; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, run_id = text.split("|", 1)
        when = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValueError(f"not a cursor of this listing: {cursor[:40]!r}") from None
    if when.tzinfo is None or not run_id or len(run_id) > 36:
        raise ValueError(f"not a cursor of this listing: {cursor[:40]!r}")
    return when.astimezone(UTC), run_id


def find_runs(engine: Engine, prefix: str, limit: int = 2) -> list[dict[str, Any]]:
    """Runs whose id starts with ``prefix``, at most ``limit``: a unique prefix gives one."""
    with engine.connect() as conn:
        found = conn.execute(
            select(runs.c.run_id).where(runs.c.run_id.startswith(prefix, autoescape=True)).limit(limit)
        ).all()
    return [run for (run_id,) in found if (run := get_run(engine, run_id)) is not None]


def get_run(engine: Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).one_or_none()
        if row is None:
            return None
        stage_rows = conn.execute(select(stages).where(stages.c.run_id == run_id)).all()
    return _run_dict(row, list(stage_rows))
