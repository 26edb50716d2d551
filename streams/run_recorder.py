"""Appending a run's records to the run log, keeping the ``runs`` table folded from them, and cancelling.

One ``RunRecorder`` per worker serves the stage agents and the cancellation agent, which may both act on
one run (a superseded run is cancelled while its stage runs). Each record is written under the run's lock
against the run's latest state: a record made from a state that has since ended is dropped (``RunEnded``),
and when a run ends, the stage attempt it still has running on this worker is cancelled (its child killed).
The runs table is co-partitioned with the stage topics, the run log and the run-control topic, so every
agent acting on a run lives on the worker that holds its state.

The table lags the log when a worker dies between the two writes; whoever gets the partition next
first brings the states up to the log (``catch_up``), so no stage runs twice and no record is written
twice. When a run whose subscriber limits concurrency ends, the lanes agent is told (``RunDone``), so the runs
waiting behind it can start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from hamster import ids
from hamster.audit import seal
from hamster.context import TaskContext
from hamster.errors import InvalidTransition
from hamster.execution import Outcome, execute
from hamster.lane_commands import RunDone, lanes_key
from hamster.lifecycle import RunState, catch_up, evolve
from hamster.run_events import (
    CancelRun,
    RunCancelled,
    RunEvent,
    RunRequested,
    decode_run_event,
    encode_run_event,
)
from hamster.task import Task
from streams.app import Streams, send_acked
from streams.reader import partition_for, patiently, read_topic
from streams.topics import run_events_topic

log = logging.getLogger(__name__)


def _read_from(bootstrap: str, topic: str, partition: int, start: int) -> list[tuple[int, RunEvent]]:
    """The run-log records of ``partition`` from offset ``start`` on; undecodable ones are not runs'."""
    found = []
    for record in read_topic(bootstrap, topic, only=[partition], from_offset=start):
        try:
            found.append((record.offset, decode_run_event(record.value)))
        except ValidationError:
            continue
    return found


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
        self._partition_locks: dict[int, asyncio.Lock] = {}
        self._caught_up: dict[int, int] = {}  # partition → the consumer generation it was caught up in
        self._read_from: dict[int, int] = {}  # partition → where in the run log that catch-up read from

    async def catch_up(self, partition: int) -> None:
        """Bring the states of ``partition``'s runs up to the run log, once per rebalance, before any agent
        decides from them: the worker that had the partition may have died between appending a record and
        its table's changelog (``hamster.lifecycle.catch_up``). Reads the log from the earliest of the
        latest records of the runs in flight (``load`` reads further back for a run with no state)."""
        generation = self.streams.app.consumer_generation_id
        async with self._partition_locks.setdefault(partition, asyncio.Lock()):
            if self._caught_up.get(partition) == generation:
                return
            count = self.streams.settings.partitions
            states = {
                key.decode(): RunState.model_validate_json(raw)
                for key, raw in list(self.streams.runs.items())
                if partition_for(key.decode(), count) == partition
            }
            # A record its table may miss comes after the latest record the table has for that run, and
            # runs that ended write nothing more: read from the earliest latest record of a run in flight.
            in_flight = [s.log_offset for s in states.values() if s.log_offset is not None and not s.finished]
            known = [s.log_offset for s in states.values() if s.log_offset is not None]
            start = min(in_flight) + 1 if in_flight else max(known, default=-1) + 1
            self._read_from[partition] = start
            topic = run_events_topic(self.streams.settings)
            records = await patiently(
                _read_from, self.streams.settings.kafka_bootstrap, topic, partition, start, what=topic
            )
            for run_id, state in catch_up(states, records).items():
                current = self.stored(run_id)
                if current is None or current.seq < state.seq:  # an agent here may have moved it on meanwhile
                    self.streams.runs[run_id.encode()] = state.model_dump_json().encode()
                    log.warning(
                        "run %s: state caught up with the run log to seq %d (%s): its worker was cut off",
                        run_id,
                        state.seq,
                        state.status,
                    )
            self._caught_up[partition] = generation

    def stored(self, run_id: str) -> RunState | None:
        raw = self.streams.runs.get(run_id.encode())
        return RunState.model_validate_json(raw) if raw else None

    async def load(
        self, run_id: str, requested: RunRequested, requested_offset: int | None, partition: int
    ) -> RunState:
        """The run's state: from the table, else from the run log when a worker before may have begun it
        (requested before the part of the log ``catch_up`` read), else from its ``RunRequested``."""
        stored = self.stored(run_id)
        if stored is not None:
            return stored
        read_from = self._read_from.get(partition)
        if requested_offset is not None and read_from is not None and requested_offset < read_from:
            topic = run_events_topic(self.streams.settings)
            records = await patiently(
                _read_from,
                self.streams.settings.kafka_bootstrap,
                topic,
                partition,
                requested_offset,
                what=topic,
            )
            found = catch_up({}, [(offset, r) for offset, r in records if r.run_id == run_id]).get(run_id)
            if found is not None and self.stored(run_id) is None:
                self.streams.runs[run_id.encode()] = found.model_dump_json().encode()
                log.warning(
                    "run %s: state rebuilt from the run log to seq %d (%s)", run_id, found.seq, found.status
                )
            if found is not None:
                return self.stored(run_id) or found
        return evolve(None, requested)

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
            written = await send_acked(self.streams.run_events, state.run_id, encode_run_event(record))
            new = new.model_copy(update={"log_offset": written.offset})
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

    async def cancel(self, command: CancelRun, partition: int) -> RunState | None:
        """End the run as cancelled, unless it already ended; stops its stage attempt on this worker."""
        if command.requested is None:  # from outside (GitHub's Cancel button): the stored state only
            known = self.stored(command.run_id)
            if known is None:
                log.warning("run %s: not cancelled (%s): no state of it here", command.run_id, command.reason)
                return None
            state = known
        else:
            state = await self.load(command.run_id, command.requested, command.requested_offset, partition)
        if state.finished:
            await self.release(state)  # a crash may have come between its last record and the notice
            return state
        try:
            state = await self.record(state, RunCancelled, reason=command.reason)
        except RunEnded as ended:
            return ended.state
        log.info("run %s: cancelled: %s", command.run_id, command.reason)
        return state
