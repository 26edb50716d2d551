"""Agent: concurrency control. Files runs in their lanes, starts them when they may, cancels superseded ones.

Reads the lanes topic (key: repository), so one repository's commands come in order to one worker, which
keeps that repository's books (one per subscriber) in the ``lanes`` table. What a command does to a book is
decided by ``hamster.subscribers.concurrency``; this agent carries it out: a superseded run gets a
``CancelRun`` on the run-control topic (``agents.run_control``), a run that may start gets its first stage
request. The book is written after those sends were acknowledged: a crash in between makes the command run
again against the old book, which decides the same, and the stage agents and the cancellation agent take a
repeated request as one.
"""

from __future__ import annotations

import logging

from agents.plumbing import decoded
from hamster import logs
from hamster.runs.events import CancelRun, RunStage
from hamster.subscribers.concurrency import (
    LaneBook,
    LaneChange,
    LaneRun,
    on_finished,
    on_requested,
    superseded_reason,
)
from hamster.subscribers.lane_commands import LANE_COMMAND, FileRun
from streams.app import RawStream, Streams, send_acked

log = logging.getLogger(__name__)


def register(streams: Streams) -> None:
    books = streams.lane_books

    async def carry_out(change: LaneChange, superseding: str) -> None:
        for run in change.cancel:
            request = RunStage.model_validate_json(run.request)
            cancel = CancelRun(
                run_id=run.run_id,
                reason=superseded_reason(superseding),
                requested=request.requested,
                requested_offset=request.requested_offset,
            )
            await send_acked(streams.run_control, run.run_id, cancel.model_dump_json().encode())
            log.info("run %s: superseded by run %s in lane %s", run.run_id, superseding, run.lane)
        for run in change.start:
            request = RunStage.model_validate_json(run.request)
            await send_acked(streams.stage_topic(request.stage), run.run_id, run.request.encode())
            log.info("run %s: starts in lane %s", run.run_id, run.lane)

    @streams.app.agent(streams.lanes, name="hamster.lanes", concurrency=1)
    async def lanes(stream: RawStream) -> None:
        async for _, command in decoded(streams, "lanes", stream, LANE_COMMAND.validate_json):
            logs.bind(run_id=command.run_id)
            key = command.book.encode()
            raw = books.get(key)
            book = LaneBook.model_validate_json(raw) if raw else None
            if isinstance(command, FileRun):
                run = LaneRun(run_id=command.run_id, lane=command.lane, request=command.request)
                change = on_requested(book, command.policy, run)
                if not any(r.run_id == command.run_id for r in change.start):
                    log.info(
                        "run %s: waits in lane %s (%s)", command.run_id, command.lane, command.concurrency
                    )
            else:
                change = on_finished(book, command.run_id)
            await carry_out(change, command.run_id)
            if change.book.runs:
                books[key] = change.book.model_dump_json().encode()
            elif raw is not None:
                del books[key]
