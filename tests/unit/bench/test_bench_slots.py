"""The slots section's reading of the workers' JSON log lines: when something was logged, how long a
consumer-group rebalance took."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bench.slots import logged_at, rebalance_seconds

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def line(when: float, message: str, logger: str = "agents.stages") -> str:
    return json.dumps({"time": at(when).isoformat(), "level": "INFO", "logger": logger, "message": message})


def test_logged_at_finds_the_first_json_line_with_the_message():
    """Non-JSON lines (a banner, a traceback) are skipped; the first matching line's time is taken."""
    text = "\n".join(
        ["starting…", line(3.0, "stage worker: 2 slot(s) for task(s) slow"), line(9.0, "stage worker: again")]
    )
    assert logged_at(text, "stage worker: ") == at(3).timestamp()
    assert logged_at(text, "nothing like it") is None


def test_rebalance_seconds_runs_from_leaving_the_partitions_to_the_new_assignment():
    """A rebalance starts when the worker gives up its partitions (or joins the group), the first time at
    or after a given moment, and ends at its next assignment."""
    group = "aiokafka.consumer.group_coordinator"
    joiner = "\n".join(
        [
            line(1.0, "Revoking previously assigned partitions set() for group g", group),
            line(1.2, "(Re-)joining group g", group),
            line(2.7, "Setting newly assigned partitions {…}", group),
        ]
    )
    assert rebalance_seconds(joiner) == pytest.approx(1.7)
    incumbent = "\n".join(
        [
            line(0.5, "(Re-)joining group g", group),
            line(0.9, "Setting newly assigned partitions {…}", group),
            line(10.0, "Revoking previously assigned partitions {…} for group g", group),
            line(10.1, "(Re-)joining group g", group),
            line(13.0, "Setting newly assigned partitions {…}", group),
        ]
    )
    assert rebalance_seconds(incumbent, after=at(5).timestamp()) == pytest.approx(3.0)
    assert rebalance_seconds(incumbent, after=at(20).timestamp()) is None
