"""Agent: cancel runs. Reads the run-control topic (key: run id), co-partitioned with the runs table.

A ``CancelRun`` (from the lanes agent, for a superseded run, or from GitHub's Cancel button) ends the run
as ``cancelled`` with its reason, unless it already ended; the run's stage attempt running on this worker
is stopped, and the records its stage agent was about to write are dropped (``streams.run_recorder``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agents.dead_letters import set_aside
from hamster import logs
from hamster.run_events import CancelRun
from streams.app import Streams
from streams.run_recorder import RunRecorder


def register(streams: Streams, recorder: RunRecorder) -> None:
    @streams.app.agent(streams.run_control, name="hamster.cancellations", concurrency=1)
    async def cancellations(stream: Any) -> None:
        async for event in stream.events():
            try:
                command = CancelRun.model_validate_json(event.value)
            except ValidationError as exc:
                await set_aside(streams, "cancellations", exc, event)
                continue
            delivery = command.requested.event.delivery_id if command.requested is not None else None
            logs.bind(delivery_id=delivery, run_id=command.run_id)
            await recorder.catch_up(event.message.partition)
            await recorder.cancel(command, event.message.partition)
