"""The live projection's batches: a run skipping a sequence number inside a batch is noticed, so the batch
is applied record by record, each after its gap check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from agents.projection import has_holes


def items(*pairs: tuple[str, int]) -> list[Any]:
    return [(0, offset, SimpleNamespace(run_id=run, seq=seq)) for offset, (run, seq) in enumerate(pairs)]


def test_consecutive_records_and_other_runs_are_no_hole():
    assert not has_holes(items(("a", 1), ("b", 4), ("a", 2), ("a", 3), ("b", 5)))


def test_a_record_read_twice_or_a_lease_renewal_is_no_hole():
    # LeaseRenewed keeps its run's seq; a record delivered again after a rebalance repeats one.
    assert not has_holes(items(("a", 3), ("a", 3), ("a", 4), ("a", 2), ("a", 4)))


def test_a_skipped_sequence_number_is_a_hole():
    assert has_holes(items(("a", 5), ("b", 1), ("a", 6), ("a", 8)))
