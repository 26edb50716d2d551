"""The projection's contract, one suite run on sqlite and on a real PostgreSQL: schema, writes, queries."""

from __future__ import annotations

import threading
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from hamster.projection.migrations import HEAD, current_revision
from hamster.projection.queries import get_run, list_runs
from hamster.projection.sql import apply_batch, make_engine, metadata
from tests.contract.records import T0, batch, run_records


def test_migrations_build_exactly_the_projection_schema(engine):
    """A fresh database migrated to head has the tables, columns and indexes projection.sql declares."""
    assert current_revision(engine) == "0002" == HEAD
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_a_database_made_before_migrations_is_stamped_not_rebuilt(db_url):
    """Tables from create_all (no alembic_version) keep their rows and are stamped at the first revision."""
    url = db_url.replace("postgresql://", "postgresql+psycopg://")
    old = create_engine(url)
    metadata.create_all(old)
    _, records = run_records("old-delivery")
    apply_batch(old, "t.run-events", batch(records))
    old.dispose()
    engine = make_engine(db_url)
    assert current_revision(engine) == "0002"
    assert [r["delivery_id"] for r in list_runs(engine)] == ["old-delivery"]
    engine.dispose()


def test_processes_starting_together_migrate_once(db_url):
    """Four processes' make_engine at once (threads here) all succeed and leave one schema at head."""
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            make_engine(db_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    engine = make_engine(db_url)
    assert current_revision(engine) == "0002"
    engine.dispose()


def test_a_run_is_projected_with_its_stages(engine):
    """A run's records give one row with each stage's status, attempt, output, error and duration."""
    run_id, records = run_records("d-fail", outcome="failed")
    assert apply_batch(engine, "t.run-events", batch(records)) == len(records)
    run = get_run(engine, run_id)
    assert run is not None
    assert (run["status"], run["reason"], run["repo"], run["pr_number"]) == (
        "failed",
        "test: 3 tests failed",
        "acme/app",
        7,
    )
    lint, test = run["stages"]
    assert (lint["name"], lint["status"], lint["attempt"], lint["duration_ms"]) == (
        "lint",
        "succeeded",
        1,
        1000.0,
    )
    assert lint["output"]["warnings"] == 0
    assert (test["status"], test["error"]["type"], test["error"]["message"]) == (
        "failed",
        "AssertionError",
        "3 tests failed",
    )
    assert run["requested_at"].startswith("2026-11-27T12:00:00")


def test_applying_the_same_offsets_again_changes_nothing(engine):
    """Offsets at or below the stored one are skipped; a record rewritten at a new offset counts once."""
    run_id, records = run_records("d-idem")
    assert apply_batch(engine, "t.run-events", batch(records[:3])) == 3
    assert apply_batch(engine, "t.run-events", batch(records[:3])) == 0
    assert apply_batch(engine, "t.run-events", [(0, 50, records[2])]) == 0
    assert apply_batch(engine, "t.run-events", batch(records[3:], first_offset=51)) == len(records) - 3
    assert get_run(engine, run_id)["status"] == "succeeded"


def test_listing_filters_and_orders_newest_first(engine):
    """list_runs filters by repository, subscriber and status, combined, newest first, with a limit."""
    specs = [
        ("d1", "ci", "acme/app", "succeeded"),
        ("d2", "ci", "acme/lib", "failed"),
        ("d3", "deploy", "acme/app", "succeeded"),
        ("d4", "ci", "acme/app", "running"),
    ]
    offset = 0
    for minute, (delivery, subscriber, repo, outcome) in enumerate(specs):
        _, records = run_records(delivery, subscriber, repo, outcome, start=T0 + timedelta(minutes=minute))
        apply_batch(engine, "t.run-events", batch(records, first_offset=offset))
        offset += len(records)

    def deliveries(**filters):
        return [r["delivery_id"] for r in list_runs(engine, **filters)]

    assert deliveries() == ["d4", "d3", "d2", "d1"]
    assert deliveries(repo="acme/app") == ["d4", "d3", "d1"]
    assert deliveries(subscriber="ci", repo="acme/app") == ["d4", "d1"]
    assert deliveries(status="running") == ["d4"]
    assert deliveries(status="failed", repo="acme/app") == []
    assert deliveries(limit=2) == ["d4", "d3"]
    assert get_run(engine, "no-such-run") is None


def test_keyset_pages_return_every_run_once_while_new_runs_arrive(engine):
    """Paging with next_cursor visits every run that existed exactly once, newest first, even as newer
    runs are projected between pages and several runs share a requested_at."""
    from hamster.projection.queries import next_cursor

    offset = 0

    def add(delivery: str, start) -> None:
        nonlocal offset
        _, records = run_records(delivery, start=start)
        apply_batch(engine, "t.run-events", batch(records, first_offset=offset))
        offset += len(records)

    for n in range(23):
        add(f"old-{n}", T0 + timedelta(minutes=n // 3))  # three runs per minute: ties on requested_at
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_runs(engine, limit=5, cursor=cursor)
        seen.extend(r["delivery_id"] for r in page)
        add(f"new-{pages}", T0 + timedelta(hours=1, minutes=pages))  # newer than everything listed
        pages += 1
        cursor = next_cursor(page, 5)
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"old-{n}" for n in range(23))  # each exactly once, no newcomer
    assert len(seen) == len(set(seen)) == 23 and pages == 5
    order = [(r["requested_at"], r["run_id"]) for r in list_runs(engine) if r["delivery_id"] in seen]
    assert [d for d in seen] == [
        r["delivery_id"] for r in list_runs(engine) if r["delivery_id"] in set(seen)
    ] and order == sorted(order, reverse=True)
    first = list_runs(engine, limit=3, status="succeeded", repo="acme/app")
    assert [r["delivery_id"] for r in first] == ["new-4", "new-3", "new-2"]
    rest = list_runs(engine, limit=100, status="succeeded", repo="acme/app", cursor=next_cursor(first, 3))
    assert len(rest) == 23 + 5 - 3


def test_a_cursor_not_made_by_the_listing_is_refused(engine):
    """A forged or damaged cursor is a ValueError, never a query with what it smuggles in."""
    import pytest

    for bad in ("", "not-base64!", "bm90IGEgY3Vyc29y", "MjAyNi0xMS0yN1QxMjowMDowMHxydW4"):
        with pytest.raises(ValueError):
            list_runs(engine, limit=5, cursor=bad or "x")
