"""Log lines carry the delivery and run they are about, as text or JSON."""

from __future__ import annotations

import logging

from hamster import logs


def test_log_lines_carry_the_bound_ids():
    """A line logged after bind() carries delivery_id and run_id, in text and in JSON."""
    record = logging.LogRecord("agents.stages", logging.INFO, __file__, 1, "stage %s done", ("a",), None)
    logs.bind(delivery_id="d-1", run_id="r-1")
    try:
        logs.ContextFilter().filter(record)
    finally:
        logs.bind()
    text = logging.Formatter(logs.TEXT_FORMAT).format(record)
    assert text.endswith("agents.stages [delivery=d-1 run=r-1]: stage a done")
    assert '"delivery_id": "d-1", "run_id": "r-1"' in logs.JsonFormatter().format(record)
    bare = logging.LogRecord("x", logging.INFO, __file__, 1, "no ids", (), None)
    logs.ContextFilter().filter(bare)
    assert "delivery_id" not in logs.JsonFormatter().format(bare)
