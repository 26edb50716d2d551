"""Agents: one per registered task, each reading its own stage topic (key: run id).

A stage agent takes a ``RunStage`` request, asks ``hamster.next_step.plan`` what to do given the run's
current state (the ``runs`` table, co-partitioned with the stage topics), records ``StageStarted``, runs
the task, records ``StageSucceeded`` or ``StageFailed``, and carries out ``after_stage``: hand the run to
the next stage's topic, retry after a backoff, or record ``RunSucceeded`` / ``RunFailed``.

Each record goes to the run log (acknowledged) before the table is updated: the log is the truth, and a
crash between the two only makes the next try redo work the state machine then recognises.
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
from hamster import ids, logs
from hamster.audit import seal
from hamster.context import TaskContext
from hamster.execution import Failed, execute
from hamster.github import EventObjects, client_for
from hamster.lifecycle import RunState, evolve
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
    RunEvent,
    RunFailed,
    RunStage,
    RunSucceeded,
    StageFailed,
    StageStarted,
    StageSucceeded,
    encode_run_event,
)
from hamster.task import Task
from streams.app import Streams, send_acked

log = logging.getLogger(__name__)


class RunRecorder:
    """Appends a run's records to the log and keeps the ``runs`` table folded from them."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams

    def load(self, request: RunStage) -> RunState:
        raw = self.streams.runs.get(request.run_id.encode())
        if raw:
            return RunState.model_validate_json(raw)
        # First record of this run on this partition: rebuild it from the request's RunRequested.
        return evolve(None, request.requested)

    async def record(self, state: RunState, make: Any, **fields: Any) -> RunState:
        seq = state.seq + 1
        record: RunEvent = seal(
            make(event_id=ids.event_id(state.run_id, seq), run_id=state.run_id, seq=seq, **fields),
            state.last_hash,
        )
        new = evolve(state, record)  # raises InvalidTransition before anything is written
        await send_acked(self.streams.run_events, state.run_id, encode_run_event(record))
        self.streams.metrics.observe(record, state.subscriber)
        self.streams.runs[state.run_id.encode()] = new.model_dump_json().encode()
        return new


async def follow_up(
    streams: Streams, recorder: RunRecorder, state: RunState, index: int, request: RunStage
) -> None:
    decision = after_stage(state, index)
    if isinstance(decision, HandOff):
        following = state.pipeline[decision.index]
        topic = streams.stages.get(following)
        if topic is None:
            await recorder.record(
                state, RunFailed, stage=following, reason=f"task {following} is not registered on this worker"
            )
            return
        handoff = RunStage(
            run_id=state.run_id,
            index=decision.index,
            attempt=1,
            requested=request.requested,
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


async def run_stage(streams: Streams, recorder: RunRecorder, task: Task, request: RunStage) -> None:
    state = recorder.load(request)
    step = plan(state, request)
    if isinstance(step, Skip):
        log.info("run %s: stage %s request skipped: %s", request.run_id, request.stage, step.reason)
        return
    if isinstance(step, Start):
        if request.not_before is not None:
            wait = (request.not_before - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        state = await recorder.record(
            state, StageStarted, stage=task.name, index=request.index, attempt=step.attempt
        )
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
        outcome = await execute(task, ctx)
        if isinstance(outcome, Failed):
            retrying = outcome.retryable and step.attempt <= task.retries
            state = await recorder.record(
                state,
                StageFailed,
                stage=task.name,
                index=request.index,
                attempt=step.attempt,
                error_type=outcome.error_type,
                message=outcome.message,
                traceback=outcome.traceback,
                duration_ms=outcome.duration_ms,
                retrying=retrying,
            )
        else:
            state = await recorder.record(
                state,
                StageSucceeded,
                stage=task.name,
                index=request.index,
                attempt=step.attempt,
                output=outcome.output,
                duration_ms=outcome.duration_ms,
            )
    else:
        assert isinstance(step, Continue)
    await follow_up(streams, recorder, state, request.index, request)


def register(streams: Streams) -> None:
    recorder = RunRecorder(streams)
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
                await run_stage(streams, recorder, task, request)
            except Exception:
                # An exception escaping an agent acknowledges the message and restarts the actor without
                # retrying it; log it loudly instead so the run is not silently dropped.
                log.exception("run %s: stage %s could not be processed", request.run_id, task.name)

    stage_agent.__name__ = stage_agent.__qualname__ = f"stage_{task.name}"
    streams.app.agent(topic, name=f"hamster.stage.{task.name}", concurrency=1)(stage_agent)
