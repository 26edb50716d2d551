"""The SQL projection: rows from the run log, idempotent by offset."""

from __future__ import annotations

from hamster.projection.queries import get_run, list_runs
from hamster.projection.sql import apply_batch, make_engine
from hamster.runs.events import RunSucceeded
from tests.unit.runs.records import RUN, requested, started, succeeded


def records():
    return [
        requested(),
        started(2, 0),
        succeeded(3, 0, output={"x": 1}),
        started(4, 1),
        succeeded(5, 1),
        RunSucceeded(event_id="e6", run_id=RUN, seq=6),
    ]


def test_projection_writes_runs_and_stages(tmp_path):
    """Applying a run's records gives one succeeded run with both stages."""
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    apply_batch(engine, "t", [(0, i, r) for i, r in enumerate(records())])
    run = get_run(engine, RUN)
    assert run is not None and run["status"] == "succeeded"
    assert [(s["name"], s["status"], s["output"]) for s in run["stages"]] == [
        ("a", "succeeded", {"x": 1}),
        ("b", "succeeded", None),
    ]
    assert [r["run_id"] for r in list_runs(engine, status="succeeded")] == [RUN]
    assert list_runs(engine, status="failed") == []


def test_replayed_offsets_are_skipped(tmp_path):
    """Applying the same offsets again changes nothing; a record written twice counts once."""
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    batch = [(0, i, r) for i, r in enumerate(records()[:3])]
    assert apply_batch(engine, "t", batch) == 3
    assert apply_batch(engine, "t", batch) == 0
    # The same record at a new offset (a producer retry after a crash) is recognised by its sequence number.
    assert apply_batch(engine, "t", [(0, 10, records()[2])]) == 0
    assert get_run(engine, RUN)["stages"][0]["status"] == "succeeded"


def test_gaps_are_detected_and_filled_without_moving_offsets(tmp_path):
    """A record whose predecessors are missing is a gap; records read back fill it by sequence alone."""
    from sqlalchemy import select

    from hamster.projection.sql import applied_offsets, apply, missing_before

    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    first, second, third = records()[:3]
    with engine.begin() as conn:
        assert missing_before(conn, second)
        assert not missing_before(conn, first)
        apply(conn, "t", 0, -1, first, track=False)
        assert not missing_before(conn, second)
        assert missing_before(conn, third)
        assert conn.execute(select(applied_offsets)).all() == []
    assert apply_batch(engine, "t", [(0, 5, second), (0, 6, third)]) == 2
    assert get_run(engine, RUN)["stages"][0]["status"] == "succeeded"
