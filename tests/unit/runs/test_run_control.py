"""Run-control commands: what the run-control agent reads, old cancellations included."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hamster.runs.events import CancelRun, RunStage, StartRun, decode_run_control
from tests.unit.runs.records import requested


def test_a_cancellation_written_before_commands_had_a_type_still_reads():
    """A CancelRun from before StartRun existed (no ``type``) is read as a cancellation."""
    old = b'{"run_id": "r-1", "reason": "superseded by run r-2"}'
    assert decode_run_control(old) == CancelRun(run_id="r-1", reason="superseded by run r-2")


def test_a_start_command_carries_the_run_and_its_first_stage_request():
    """StartRun round-trips with its RunRequested and its stage request."""
    req = requested()
    command = StartRun(
        requested=req, request=RunStage(run_id=req.run_id, index=0, requested=req, event=req.event)
    )
    decoded = decode_run_control(command.model_dump_json().encode())
    assert isinstance(decoded, StartRun) and decoded.run_id == req.run_id and decoded.request.stage == "a"


def test_an_unknown_command_is_refused():
    """A command of no known type is refused (it goes to the dead letters)."""
    with pytest.raises(ValidationError):
        decode_run_control(b'{"type": "DropTables", "run_id": "r-1"}')
