"""Batched projection (sqlite and PostgreSQL): folding a batch per run in memory and writing each row once
leaves exactly the rows that applying the same records one at a time leaves."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from sqlalchemy import select

from hamster.projection.sql import applied_offsets, apply_batch, runs, stages
from hamster.runs.events import RunEvent
from tests.contract.records import run_records

TOPIC = "t.run-events"


def rows(engine) -> dict[str, list[Any]]:
    """Every row of the view, in primary-key order."""
    with engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in (runs, stages, applied_offsets)
        }


def interleaved_log() -> list[tuple[int, int, RunEvent]]:
    """Ten runs on two partitions, their records interleaved as concurrent runs write them, with a record
    written twice (a worker crashed before it updated its table) and one of a run the view never saw."""
    per_partition: dict[int, list[RunEvent]] = {0: [], 1: []}
    runs_of = {0: [], 1: []}
    for n in range(10):
        _, records = run_records(f"d-{n}", outcome="failed" if n % 3 == 0 else "succeeded")
        runs_of[n % 2].append(records)
    for partition, runs_here in runs_of.items():
        for step in zip_longest(*runs_here):
            per_partition[partition].extend(r for r in step if r is not None)
    per_partition[0].insert(7, per_partition[0][2])  # a duplicate, later in the log
    _, orphan = run_records("d-orphan")
    per_partition[1].insert(5, orphan[3])  # StageStarted of a run whose RunRequested is not in the log
    log = []
    for partition, records in per_partition.items():
        log.extend((partition, offset, record) for offset, record in enumerate(records))
    log.sort(key=lambda item: (item[1], item[0]))  # partitions interleave as a reader fetches them
    return log


def test_batches_leave_the_rows_one_at_a_time_leaves(engine, other_engine):
    """The same log, one record per transaction against batches of 7 (runs cut across batches)."""
    log = interleaved_log()
    one_by_one = sum(apply_batch(engine, TOPIC, [item]) for item in log)
    batched = sum(apply_batch(other_engine, TOPIC, log[i : i + 7]) for i in range(0, len(log), 7))
    assert one_by_one == batched == len(log) - 2  # the duplicate and the orphan change nothing
    assert rows(engine) == rows(other_engine)


def test_one_batch_keeps_each_runs_order(engine, other_engine):
    """The whole log in one batch folds each run in its own order: the same rows, every run finished."""
    log = interleaved_log()
    for item in log:
        apply_batch(engine, TOPIC, [item])
    apply_batch(other_engine, TOPIC, log)
    assert rows(engine) == rows(other_engine)
    with other_engine.connect() as conn:
        finished = {row.delivery_id: row.status for row in conn.execute(select(runs))}
    assert finished == {f"d-{n}": "failed" if n % 3 == 0 else "succeeded" for n in range(10)}
    assert apply_batch(other_engine, TOPIC, log) == 0  # every offset already applied
