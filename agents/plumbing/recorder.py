"""The one way to append a run's records to the run log: checked by the state machine before the write,
and decided by the log after it.

Every writer (the match agent's ``RunRequested``, the stages' claims, lease renewals and outcomes, the
cancellation agent, the reaper) goes through a ``RunRecorder``. It builds the record from the run's state as
this worker's ``RunView`` folded it, seals and checks it (``hamster.runs.audit.seal_next``, the state
machine: an illegal record is never written; the CLI's rerun makes its ``RunRequested`` there too), appends
it (acknowledged), and then waits for the view to fold it: two workers may append to one run at once, and
the first record in the log wins. ``accepted`` or ``RecordRefused`` tells the writer which it was.

When a run holding a concurrency lane ends, the lanes agent is told (``RunDone``), so the runs waiting
behind it can start.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from agents.plumbing.run_view import RunView
from hamster import ids
from hamster.errors import HamsterError, InvalidTransition
from hamster.runs.audit import seal_next
from hamster.runs.events import (
    CancelRun,
    DecideStage,
    LeaseRenewed,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunRequested,
    RunSucceeded,
    StageApproved,
    StageDenied,
    StagesSkipped,
    encode_run_event,
)
from hamster.runs.lifecycle import RunState, evolve
from hamster.runs.next_step import Deny, FinishSucceeded, Skip, settle
from hamster.subscribers.lane_commands import RunDone, lanes_key
from streams.app import Streams, send_acked
from streams.reader import partition_for

log = logging.getLogger(__name__)

SETTLE_TRIES = 5  # decisions made again when another record of the run came in first


class RunEnded(HamsterError):
    """The run ended (cancelled, failed by the reaper) while a worker worked on it: the record it was about
    to write is dropped."""

    def __init__(self, state: RunState) -> None:
        super().__init__(f"run {state.run_id} is already {state.status}")
        self.state = state


class RecordRefused(HamsterError):
    """The run log refused a record: another worker's record for the run came first (a claim it lost, an
    attempt that was no longer current). Retrying the same record cannot help; deciding again can."""

    def __init__(self, record: RunEvent) -> None:
        super().__init__(f"run {record.run_id}: {record.type} (seq {record.seq}) refused by the run log")
        self.record = record


class RunRecorder:
    """Appends a run's records to the log, against the state this worker's view holds."""

    def __init__(self, streams: Streams, view: RunView) -> None:
        self.streams = streams
        self.view = view
        self._locks: dict[str, asyncio.Lock] = {}

    async def request(self, requested: RunRequested) -> tuple[int, RunRequested] | None:
        """Append a run's ``RunRequested`` (sealed here) unless the log has it: (its offset, the record that
        counts), or None when the run already ended."""
        run_id = requested.run_id
        if run_id in self.view.ended:
            return None
        known = self.view.requests.get(run_id)
        if known is not None:
            return known
        requested, _ = seal_next(None, requested)
        try:
            offset = await self._append(requested, requested.subscriber)
        except RecordRefused:  # another worker requested it first (a webhook matched twice)
            return self.view.requests.get(run_id)
        return self.view.requests.get(run_id, (offset, requested))

    async def record(self, state: RunState, make: Any, **fields: Any) -> RunState:
        """Append the next record of the run now in ``state``; the run's new state.

        Raises ``RunEnded`` when the run ended meanwhile, ``InvalidTransition`` when the record does not fit
        the run (or ``state`` is not its latest), ``RecordRefused`` when another worker's record came first.
        """
        return await self._record(state.run_id, state.seq, make, fields)

    async def record_on(self, run_id: str, make: Any, **fields: Any) -> RunState:
        """Append the next record of ``run_id`` to whatever state the run is in now: for records decided
        without looking at the rest of the run (a stage attempt's outcome), which its siblings' records
        meanwhile do not change. The state machine still refuses one that no longer fits (a stale attempt).
        """
        return await self._record(run_id, None, make, fields)

    async def _record(self, run_id: str, seq: int | None, make: Any, fields: dict[str, Any]) -> RunState:
        async with self._locks.setdefault(run_id, asyncio.Lock()):
            current = self._current(run_id)
            if seq is not None and current.seq != seq:
                raise InvalidTransition(
                    run_id, current.status, make.__name__, f"made from seq {seq}, run at {current.seq}"
                )
            following = current.seq + 1
            record, _ = seal_next(  # raises InvalidTransition before anything is written
                current,
                make(event_id=ids.event_id(run_id, following), run_id=run_id, seq=following, **fields),
            )
            await self._append(record, current.subscriber)
            new = self.view.state(run_id) or self.view.ended.get(run_id)
            assert new is not None
        if new.finished:
            self._locks.pop(run_id, None)
            await self.release(new)
        return new

    async def renew(
        self, run_id: str, stage: str, index: int, attempt: int, until: datetime, released: bool = False
    ) -> RunState:
        """Record that this worker still holds ``attempt`` until ``until`` (or gave it up: ``released``)."""
        async with self._locks.setdefault(run_id, asyncio.Lock()):
            current = self._current(run_id)
            record = LeaseRenewed(
                event_id=ids.lease_id(run_id, current.seq, attempt, until.timestamp()),
                run_id=run_id,
                seq=current.seq,
                stage=stage,
                index=index,
                attempt=attempt,
                until=until,
                released=released,
            )
            evolve(current, record)
            await self._append(record, current.subscriber)
            new = self.view.state(run_id) or self.view.ended.get(run_id)
            assert new is not None
            return new

    async def cancel(self, command: CancelRun, partition: int) -> RunState | None:
        """End the run as cancelled, unless it already ended; the worker running its stage stops it."""
        await self.view.wait_for_run(command.run_id, partition, command.requested_offset, timeout=30.0)
        while True:
            ended = self.view.ended.get(command.run_id)
            if ended is not None:
                await self.release(ended)  # a crash may have come between its last record and the notice
                return ended
            state = self.view.state(command.run_id)
            if state is None:
                log.warning("run %s: not in the run log; cancel ignored", command.run_id)
                return None
            try:
                state = await self.record(state, RunCancelled, reason=command.reason)
            except RunEnded as exc:
                return exc.state
            except (RecordRefused, InvalidTransition):
                continue  # the run moved on meanwhile: decide again from its new state
            log.info("run %s: cancelled: %s", command.run_id, command.reason)
            return state

    async def settle(self, state: RunState, now: datetime) -> RunState:
        """Record what the run owes (``hamster.runs.next_step.settle``: stages a failure skips, an approval
        past its timeout, its end), until it owes nothing; the run's state then. Each decision is made
        from the run's latest state: a sibling's record may have come in meanwhile."""
        moved_on = 0
        while (decision := settle(state := self._latest(state), now)) is not None:
            try:
                if isinstance(decision, Skip):
                    names = tuple(state.stages[i].name for i in decision.indexes)
                    state = await self.record(
                        state,
                        StagesSkipped,
                        stages=names,
                        indexes=decision.indexes,
                        because=decision.because,
                        reason=decision.reason,
                    )
                    log.info("run %s: skipped %s: %s", state.run_id, ", ".join(names), decision.reason)
                elif isinstance(decision, Deny):
                    stage = state.stages[decision.index].name
                    state = await self.record(
                        state, StageDenied, stage=stage, index=decision.index, reason=decision.reason
                    )
                    log.info("run %s: %s", state.run_id, decision.reason)
                elif isinstance(decision, FinishSucceeded):
                    state = await self.record(state, RunSucceeded)
                    log.info("run %s: succeeded", state.run_id)
                else:
                    state = await self.record(state, RunFailed, stage=decision.stage, reason=decision.reason)
                    log.info("run %s: failed: %s", state.run_id, decision.reason)
            except InvalidTransition:
                moved_on += 1
                if moved_on >= SETTLE_TRIES or self._latest(state).seq == state.seq:
                    raise  # not a record that came in meanwhile: the decision itself does not fit
        return state

    def _latest(self, state: RunState) -> RunState:
        return self.view.state(state.run_id) or self.view.ended.get(state.run_id) or state

    async def decide(self, command: DecideStage, partition: int, now: datetime) -> RunState | None:
        """Approve or deny an approval stage (unless it was decided, or the run ended, meanwhile)."""
        await self.view.wait_for_run(command.run_id, partition, None, timeout=30.0)
        for _ in range(5):  # the run may move on between reading its state and appending
            state = self.view.state(command.run_id)
            if state is None:
                log.info(
                    "run %s: not in flight; %s of %s ignored", command.run_id, command.via, command.stage
                )
                return None
            index = next((i for i, s in enumerate(state.stages) if s.name == command.stage), None)
            if index is None or not state.stages[index].approval or state.stages[index].status != "pending":
                log.info("run %s: stage %s waits for no decision", command.run_id, command.stage)
                return state
            verb = "approved" if command.approve else "denied"
            fields = {"stage": command.stage, "index": index, "by": command.by, "via": command.via}
            try:
                if command.approve:
                    state = await self.record(state, StageApproved, **fields)
                else:
                    reason = f"{command.by} denied {command.stage} ({command.via})"
                    state = await self.record(state, StageDenied, **fields, reason=reason)
            except (RecordRefused, InvalidTransition):
                continue
            except RunEnded as exc:
                return exc.state
            log.info("run %s: %s %s by %s (%s)", command.run_id, command.stage, verb, command.by, command.via)
            return await self.settle(state, now)
        return self.view.state(command.run_id)

    async def release(self, state: RunState) -> None:
        """Tell the lanes agent that a run holding a lane ended (again, if a crash may have hidden it)."""
        if state.lane is None:
            return
        done = RunDone(subscriber=state.subscriber, repo=lanes_key(state.event), run_id=state.run_id)
        await send_acked(self.streams.lanes, done.repo, done.model_dump_json().encode())

    def _current(self, run_id: str) -> RunState:
        current = self.view.state(run_id)
        if current is None:
            ended = self.view.ended.get(run_id)
            if ended is not None:
                raise RunEnded(ended)
            raise InvalidTransition(run_id, "unknown", "record", "the run is not in this worker's view")
        return current

    async def _append(self, record: RunEvent, subscriber: str) -> int:
        """Write ``record``, wait for the view to fold it; its offset. Raises ``RecordRefused``."""
        self.view.start()
        await self.view.ready.wait()
        written = await send_acked(self.streams.run_events, record.run_id, encode_run_event(record))
        partition = partition_for(record.run_id, self.streams.settings.partitions)
        if written.partition != partition:  # the view folds per partition by the same partitioner
            raise InvalidTransition(
                record.run_id, "?", record.type, f"written to partition {written.partition}"
            )
        if not await self.view.accepted(written.partition, written.offset):
            raise RecordRefused(record)
        self.streams.metrics.observe(record, subscriber)
        return int(written.offset)
