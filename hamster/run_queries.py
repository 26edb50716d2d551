"""Reading the projection: runs as plain dicts, the shape ``hamster runs --json`` and the API print."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from hamster.projection import runs, stages


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
) -> list[dict[str, Any]]:
    """Runs, newest first."""
    query = select(runs).order_by(runs.c.requested_at.desc(), runs.c.run_id)
    if repo:
        query = query.where(runs.c.repo == repo)
    if status:
        query = query.where(runs.c.status == status)
    if subscriber:
        query = query.where(runs.c.subscriber == subscriber)
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


def get_run(engine: Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).one_or_none()
        if row is None:
            return None
        stage_rows = conn.execute(select(stages).where(stages.c.run_id == run_id)).all()
    return _run_dict(row, list(stage_rows))
