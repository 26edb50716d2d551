"""Agent: cancel runs, and decide approval stages. Reads the run-control topic (key: run id).

A ``DecideStage`` (from an ``/approve`` or ``/deny`` comment of a person with write permission, or the
dashboard's buttons) approves or denies an approval stage (``RunRecorder.decide``).

A ``CancelRun`` (from the lanes agent for a superseded run, from GitHub's Cancel button, or for a
destroyed merge group) ends the run as ``cancelled``
with its reason, unless it already ended. Whichever worker runs the run's stage sees the run end in its
view of the run log and stops the attempt; what it was about to record is refused (``agents.stages``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agents.dead_letters import set_aside
from hamster import logs
from hamster.run_events import RUN_CONTROL, CancelRun
from streams.app import Streams
from streams.run_recorder import RunRecorder


def register(streams: Streams, recorder: RunRecorder) -> None:
    @streams.app.agent(streams.run_control, name="hamster.cancellations", concurrency=1)
    async def cancellations(stream: Any) -> None:
        async for event in stream.events():
            try:
                command = RUN_CONTROL.validate_json(event.value)
            except ValidationError as exc:
                await set_aside(streams, "cancellations", exc, event)
                continue
            logs.bind(run_id=command.run_id)
            if isinstance(command, CancelRun):
                await recorder.cancel(command, event.message.partition)
            else:
                await recorder.decide(command, event.message.partition, datetime.now(UTC))
