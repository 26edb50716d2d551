"""Agents: one per registered task, each reading its own stage topic (key: run id).

A stage agent takes a ``RunStage`` request, asks ``hamster.next_step.plan`` what to do given the run's
current state (the ``runs`` table, co-partitioned with the stage topics), records ``StageStarted``, runs
the task, records ``StageSucceeded`` or ``StageFailed``, and carries out ``after_stage``: hand the run to
the next stage's topic, retry after a backoff, or record ``RunSucceeded`` / ``RunFailed``.

Each record goes to the run log (acknowledged) before the table is updated (``streams.run_recorder``): the
log is the truth, and a crash between the two only makes the next try redo work the state machine then
recognises. A run cancelled while its stage runs (superseded, ``agents.cancellations``) has its attempt
stopped and whatever the stage agent was about to record dropped.
Concurrency stays 1 per agent: with more, Faust can commit an offset past a message still being processed
(faust-streaming #606), and a crash would lose that stage.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from agents.dead_letters import set_aside
from hamster import logs
from hamster.context import TaskContext
from hamster.execution import Failed
from hamster.github import EventObjects, client_for
from hamster.lifecycle import RunState
from hamster.next_step import (
    Continue,
    FinishFailed,
    FinishSucceeded,
    HandOff,
    Retry,
    Skip,
    Start,
    after_stage,
    plan,
)
from hamster.run_events import (
    RunFailed,
    RunStage,
    RunSucceeded,
    StageFailed,
    StageStarted,
    StageSucceeded,
)
from hamster.task import Task
from streams.app import Streams, send_acked
from streams.run_recorder import RunEnded, RunRecorder

log = logging.getLogger(__name__)


async def follow_up(
    streams: Streams, recorder: RunRecorder, state: RunState, index: int, request: RunStage
) -> None:
    decision = after_stage(state, index)
    if isinstance(decision, HandOff):
        following = state.pipeline[decision.index]
        topic = streams.stages.get(following)
        if topic is None:  # a subscriber version this worker does not have
            await recorder.record(
                state, RunFailed, stage=following, reason=f"task {following} is not registered on this worker"
            )
            return
        handoff = RunStage(
            run_id=state.run_id,
            index=decision.index,
            attempt=1,
            requested=request.requested,
            requested_offset=request.requested_offset,
            event=request.event,
            outputs=state.outputs(),
        )
        await send_acked(topic, state.run_id, handoff.model_dump_json().encode())
    elif isinstance(decision, Retry):
        retry = RunStage(
            run_id=state.run_id,
            index=index,
            attempt=decision.attempt,
            requested=request.requested,
            requested_offset=request.requested_offset,
            event=request.event,
            outputs=state.outputs(),
            not_before=datetime.now(UTC) + timedelta(seconds=decision.delay_s),
        )
        await send_acked(
            streams.stages[state.pipeline[index]], state.run_id, retry.model_dump_json().encode()
        )
        log.info(
            "run %s: stage %s retries as attempt %d in %.1f s",
            state.run_id,
            state.pipeline[index],
            decision.attempt,
            decision.delay_s,
        )
    elif isinstance(decision, FinishSucceeded):
        await recorder.record(state, RunSucceeded)
        log.info("run %s: succeeded", state.run_id)
    elif isinstance(decision, FinishFailed):
        await recorder.record(state, RunFailed, stage=decision.stage, reason=decision.reason)
        log.info("run %s: failed: %s", state.run_id, decision.reason)
    elif isinstance(decision, Skip):
        log.debug("run %s: nothing follows stage %d: %s", state.run_id, index, decision.reason)


async def run_stage(
    streams: Streams, recorder: RunRecorder, task: Task, request: RunStage, partition: int
) -> None:
    state = await recorder.load(request.run_id, request.requested, request.requested_offset, partition)
    step = plan(state, request)
    if isinstance(step, Skip):
        if state.finished:
            # A crash may have come between the run's last record and the lanes agent hearing of it.
            await recorder.release(state)
        log.info("run %s: stage %s request skipped: %s", request.run_id, request.stage, step.reason)
        return
    try:
        if isinstance(step, Start):
            after = await start(streams, recorder, task, request, state, step)
            if after is None:
                return
            state = after
        else:
            assert isinstance(step, Continue)
        await follow_up(streams, recorder, state, request.index, request)
    except RunEnded as ended:
        log.info(
            "run %s: %s while stage %s ran; its outcome is dropped",
            request.run_id,
            ended.state.status,
            task.name,
        )


async def start(
    streams: Streams, recorder: RunRecorder, task: Task, request: RunStage, state: RunState, step: Start
) -> RunState | None:
    """Run the stage as ``step.attempt`` and record how it went; None if the run ended meanwhile."""
    if request.not_before is not None:
        wait = (request.not_before - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
    which = {"stage": task.name, "index": request.index, "attempt": step.attempt}
    state = await recorder.record(state, StageStarted, **which)
    ctx = TaskContext(
        event=request.event,
        params=state.params,
        outputs=request.outputs,
        run_id=state.run_id,
        attempt=step.attempt,
        subscriber=state.subscriber,
        stage=task.name,
        github=EventObjects(client_for(streams.settings), request.event),
    )
    # A run that may be cancelled runs its blocking tasks where they can be stopped.
    outcome = await recorder.attempt(task, ctx, killable=state.lane is not None)
    if outcome is None:
        log.info("run %s: stage %s stopped: the run ended while it ran", state.run_id, task.name)
        return None
    if isinstance(outcome, Failed):
        return await recorder.record(
            state,
            StageFailed,
            **which,
            error_type=outcome.error_type,
            message=outcome.message,
            traceback=outcome.traceback,
            duration_ms=outcome.duration_ms,
            retrying=outcome.retryable and step.attempt <= task.retries,
        )
    return await recorder.record(
        state, StageSucceeded, **which, output=outcome.output, duration_ms=outcome.duration_ms
    )


def register(streams: Streams, recorder: RunRecorder) -> None:
    for name, task in streams.catalog.tasks.items():
        _register_one(streams, recorder, streams.stages[name], task)


def _register_one(streams: Streams, recorder: RunRecorder, topic: Any, task: Task) -> None:
    async def stage_agent(stream: Any) -> None:
        async for event in stream.events():
            try:
                request = RunStage.model_validate_json(event.value)
            except ValidationError as exc:
                await set_aside(streams, f"stage {task.name}", exc, event)
                continue
            logs.bind(delivery_id=request.event.delivery_id, run_id=request.run_id)
            try:
                await recorder.catch_up(event.message.partition)
                await run_stage(streams, recorder, task, request, event.message.partition)
            except Exception:
                # An exception escaping an agent acknowledges the message and restarts the actor without
                # retrying it; log it loudly instead so the run is not silently dropped.
                log.exception("run %s: stage %s could not be processed", request.run_id, task.name)

    stage_agent.__name__ = stage_agent.__qualname__ = f"stage_{task.name}"
    streams.app.agent(topic, name=f"hamster.stage.{task.name}", concurrency=1)(stage_agent)
