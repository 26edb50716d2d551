"""Appending a run's records to the run log, keeping the ``runs`` table folded from them, and cancelling.

One ``RunRecorder`` per worker serves the stage agents and the cancellation agent, which may both act on
one run (a superseded run is cancelled while its stage runs). Each record is written under the run's lock
against the run's latest state: a record made from a state that has since ended is dropped (``RunEnded``),
and when a run ends, the stage attempt it still has running on this worker is cancelled (its child killed).
The runs table is co-partitioned with the stage topics, the run log and the run-control topic, so every
agent acting on a run lives on the worker that holds its state.

When a run whose subscriber limits concurrency ends, the lanes agent is told (``RunDone``), so the runs
waiting behind it can start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hamster import ids
from hamster.audit import seal
from hamster.context import TaskContext
from hamster.errors import InvalidTransition
from hamster.execution import Outcome, execute
from hamster.lane_commands import RunDone, lanes_key
from hamster.lifecycle import RunState, evolve
from hamster.run_events import CancelRun, RunCancelled, RunEvent, RunRequested, encode_run_event
from hamster.task import Task
from streams.app import Streams, send_acked

log = logging.getLogger(__name__)


class RunEnded(Exception):
    """The run ended (cancelled) while an agent worked on it: what it was about to record is dropped."""

    def __init__(self, state: RunState) -> None:
        super().__init__(f"run {state.run_id} is already {state.status}")
        self.state = state


class RunRecorder:
    """Appends a run's records to the log and keeps the ``runs`` table folded from them."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self._locks: dict[str, asyncio.Lock] = {}
        self._attempts: dict[str, asyncio.Future[Outcome]] = {}  # run id → its stage attempt running here

    def stored(self, run_id: str) -> RunState | None:
        raw = self.streams.runs.get(run_id.encode())
        return RunState.model_validate_json(raw) if raw else None

    def load(self, run_id: str, requested: RunRequested) -> RunState:
        # First record of this run on this partition: rebuild it from the run's RunRequested.
        return self.stored(run_id) or evolve(None, requested)

    async def record(self, state: RunState, make: Any, **fields: Any) -> RunState:
        """Append the next record of the run now in ``state``; the run's new state. Raises ``RunEnded``."""
        async with self._locks.setdefault(state.run_id, asyncio.Lock()):
            current = self.stored(state.run_id)
            if current is not None and current.seq != state.seq:
                if current.finished:
                    raise RunEnded(current)
                raise InvalidTransition(
                    state.run_id,
                    current.status,
                    make.__name__,
                    f"made from seq {state.seq}, run at {current.seq}",
                )
            seq = state.seq + 1
            record: RunEvent = seal(
                make(event_id=ids.event_id(state.run_id, seq), run_id=state.run_id, seq=seq, **fields),
                state.last_hash,
            )
            new = evolve(state, record)  # raises InvalidTransition before anything is written
            await send_acked(self.streams.run_events, state.run_id, encode_run_event(record))
            self.streams.metrics.observe(record, state.subscriber)
            self.streams.runs[state.run_id.encode()] = new.model_dump_json().encode()
            if new.finished:
                self._locks.pop(state.run_id, None)
                attempt = self._attempts.pop(state.run_id, None)
                if attempt is not None:
                    attempt.cancel()  # the run ended while its stage ran (cancelled): stop the work
        if new.finished:
            await self.release(new)
        return new

    async def release(self, state: RunState) -> None:
        """Tell the lanes agent that a run holding a lane ended (again, if a crash may have hidden it)."""
        if state.lane is None:
            return
        done = RunDone(subscriber=state.subscriber, repo=lanes_key(state.event), run_id=state.run_id)
        await send_acked(self.streams.lanes, done.repo, done.model_dump_json().encode())

    async def attempt(self, task: Task, ctx: TaskContext, killable: bool) -> Outcome | None:
        """Run one attempt of a stage; None when the run ended (was cancelled) before it finished."""
        ended = self.stored(ctx.run_id)
        if ended is not None and ended.finished:
            return None
        # No await between the check above and this: a cancellation either came before (and is seen) or
        # comes after, and finds the attempt to cancel.
        job = asyncio.ensure_future(execute(task, ctx, killable=killable))
        self._attempts[ctx.run_id] = job
        try:
            await asyncio.wait([job])
        finally:
            if self._attempts.get(ctx.run_id) is job:
                del self._attempts[ctx.run_id]
            if not job.done():  # this agent itself was cancelled (the worker is stopping)
                job.cancel()
        return None if job.cancelled() else job.result()

    async def cancel(self, command: CancelRun) -> RunState:
        """End the run as cancelled, unless it already ended; stops its stage attempt on this worker."""
        state = self.load(command.run_id, command.requested)
        if state.finished:
            await self.release(state)  # a crash may have come between its last record and the notice
            return state
        try:
            state = await self.record(state, RunCancelled, reason=command.reason)
        except RunEnded as ended:
            return ended.state
        log.info("run %s: cancelled: %s", command.run_id, command.reason)
        return state
