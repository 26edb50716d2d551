"""Agent: carry out run-control commands. Reads the run-control topic (key: run id).

- ``CancelRun`` (from the lanes agent for a superseded run, GitHub's Cancel button, or a destroyed merge
  group) ends the run as ``cancelled`` with its reason, unless it already ended. Whichever worker runs the
  run's stage sees the run end in its view of the run log and stops the attempt; what it was about to
  record is refused (``agents.stages``).
- ``DecideStage`` (from an ``/approve`` or ``/deny`` comment or a click on Approve or Deny on the run's
  check run, of a person with write permission, or the dashboard's buttons) approves or denies an
  approval stage (``RunRecorder.decide``).
- ``StartRun`` (a rerun from the CLI, the dashboard or GitHub's Re-run) appends the run's ``RunRequested``
  through this worker's recorder, like every run-log record, then hands its first stage request to the
  workers. A command read twice lands on the same run (the log already has it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from agents.plumbing import RunRecorder, decoded
from hamster import logs
from hamster.runs.events import CancelRun, DecideStage, StartRun, decode_run_control, stage_request
from streams.app import RawStream, Streams, send_acked

log = logging.getLogger(__name__)


async def start(streams: Streams, recorder: RunRecorder, command: StartRun) -> None:
    found = await recorder.request(command.requested)
    if found is None:
        log.info("run %s: already requested and ended; not started again", command.run_id)
        return
    offset, requested = found
    request = stage_request(requested, command.request.event, offset, index=command.request.index)
    await send_acked(streams.stage_topic(request.stage), request.run_id, request.model_dump_json().encode())
    log.info("run %s: started (rerun of %s)", request.run_id, requested.original_run_id)


def register(streams: Streams, recorder: RunRecorder) -> None:
    @streams.app.agent(streams.run_control, name="hamster.run-control", concurrency=1)
    async def run_control(stream: RawStream) -> None:
        async for event, command in decoded(streams, "run control", stream, decode_run_control):
            logs.bind(run_id=command.run_id)
            if isinstance(command, CancelRun):
                await recorder.cancel(command, event.message.partition)
            elif isinstance(command, DecideStage):
                await recorder.decide(command, event.message.partition, datetime.now(UTC))
            else:
                await start(streams, recorder, command)
