"""Running stages: each worker takes stage attempts while it has free slots, claims them in the run log,
holds them with a lease, runs them outside any Faust agent, and records how they went.

The stage step, top to bottom:

1. **Take.** The worker's ``RunView`` holds every run in flight and the stage requests that admitted
   them. ``hamster.runs.next_step.claimable`` says which runs have a stage that may start now: pending, a
   retry that is due, or an attempt whose lease ran out. A worker takes one only while it has a free
   slot (``HAMSTER_WORKER_SLOTS``) and the stage's task. A slot is held from the claim until the work is
   over (recording the outcome needs none); claims of different runs go to the log together. A worker
   that does not hold the run's run-log partition waits ``HAMSTER_CLAIM_DELAY_S`` first, so the holder
   usually takes it uncontested.
2. **Claim.** It appends ``StageStarted`` with a lease (``HAMSTER_STAGE_LEASE_S``). When several workers
   claim the same stage, the first claim in the log wins and the others are refused (``RunRecorder``).
3. **Run.** The attempt runs as a task of its own, not inside an agent's message loop, so nothing a
   rebalance waits for is ever held by a stage. Blocking task functions run in a child process, so a lost
   lease or a cancelled run really stops them. While it runs, the worker renews the lease every third of
   its length; when the run ends (cancelled), another attempt takes the stage over, or the lease cannot be
   renewed before it runs out, the attempt is stopped.
4. **Record.** ``StageSucceeded`` or ``StageFailed`` (with ``retry_at`` when it will be retried: retries
   are scheduled in the log, never slept on). A record of an attempt that is no longer current is
   refused by the state machine.
5. **Hand off.** Nothing to send: the stages that needed it are now claimable in the log, by any worker
   (a graph's stages run side by side on whichever slots are free). What the run owes is recorded here
   (``settle``): the stages a failure skips, and the end of the run once every stage is done.

Shutting down (SIGTERM): no new claims; running attempts get ``HAMSTER_SHUTDOWN_GRACE_S`` to finish; the
others are stopped and their leases released, so another worker starts them at once. A worker killed
outright loses its leases when they run out.

The reaper (``hamster.runs.next_step.overdue``), on every worker: a run whose stage request went missing is
offered again from its webhook in the events topic, and a run that nothing moved on for
``HAMSTER_STUCK_AFTER_S`` fails with the reason, so no lane waits for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from mode import Service

from agents.plumbing import RecordRefused, RunEnded, RunRecorder, RunView, set_aside
from hamster import logs
from hamster.errors import ConfigurationError, HamsterError, InvalidTransition
from hamster.execution import sandbox, stage_logs
from hamster.execution.artifacts import ArtifactStore, for_stage
from hamster.execution.outcome import Failed, Outcome, execute
from hamster.execution.outcome import masked as masked_outcome
from hamster.execution.secrets import grant, read_source
from hamster.execution.task_processes import TaskProcesses
from hamster.github.client import client_for
from hamster.github.objects import EventObjects
from hamster.intake.envelope import decode_envelope
from hamster.intake.github_events import event_info
from hamster.pipelines.context import TaskContext
from hamster.pipelines.task import Task
from hamster.runs.events import (
    RunFailed,
    RunStage,
    StageFailed,
    StageStarted,
    StageSucceeded,
    stage_request,
)
from hamster.runs.lifecycle import RunState
from hamster.runs.next_step import (
    GiveUp,
    Reoffer,
    Start,
    claimable,
    overdue,
    retry_time,
    settle,
    wakes_at,
)
from streams.app import Streams, send_acked
from streams.dead_letter_store import set_aside_already
from streams.log_topic import LogSender
from streams.reader import partition_for, patiently, read_at
from streams.topics import dead_letters_topic, events_topic

log = logging.getLogger(__name__)

REAP_EVERY_S = 5.0
EXPIRE_ARTIFACTS_EVERY_S = 3600.0
LEASE_MARGIN_S = 2.0  # an attempt stops this long before its lease runs out if it could not renew it


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Attempt:
    """One stage attempt running on this worker."""

    run_id: str
    index: int
    attempt: int
    task: Task
    stage: str  # the stage's name: the task's, or a matrix instance's (``unit[python=3.12]``)
    job: asyncio.Future[Outcome] | None = None
    stopped_because: str | None = None
    holds_slot: bool = True  # from its claim until its work is over; recording the outcome needs no slot
    runner: asyncio.Task[None] | None = field(default=None, repr=False)


class StageWorker(Service):
    """This worker's stage slots: takes, claims, runs and records stage attempts; reaps stuck runs."""

    def __init__(self, streams: Streams, view: RunView, recorder: RunRecorder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.streams = streams
        self.view = view
        self.recorder = recorder
        self.settings = streams.settings
        self.slots = self.settings.worker_slots
        self.running: dict[tuple[str, int], Attempt] = {}  # claiming, at work or recording how it went
        self._claiming: set[str] = set()  # runs with a claim on its way to the log
        # Blocking tasks run in task processes kept ready, one per slot (a fork per attempt costs tens of ms).
        self.processes = TaskProcesses(self.slots, self.settings)
        self._draining = False
        self._first_seen: dict[tuple[str, int, int], float] = {}  # claimable since (monotonic)
        self._last_reap = 0.0
        self._last_expiry = 0.0
        self._expiry: asyncio.Future[None] | None = None
        self.secrets = stage_logs.worker_secrets(self.settings)  # masked in every stage's log
        self._environ = dict(os.environ)  # where HAMSTER_SECRET_<NAME> secrets are read from
        self._update_slot_gauge()

    # Service
    async def on_start(self) -> None:
        # Async tasks' Python logging goes to their stage's log (blocking ones': see
        # hamster.execution.task_child).
        logging.getLogger().addHandler(stage_logs.TaskLogHandler())
        await self._check_sandbox()
        self.view.start()
        if any(not task.is_async for task in self.streams.catalog.tasks.values()):
            self.processes.warm_up()
        self.add_future(self._schedule())

    async def on_stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await self.drain()
        await self.processes.close()
        await self.view.stop()

    async def _check_sandbox(self) -> None:
        """Say at start whether shell stages can run in their sandbox (they are refused where not)."""
        if self.settings.sandbox == "off":
            log.warning(
                "sandbox: HAMSTER_SANDBOX=off: shell stages run unsandboxed, with this worker's rights"
            )
            return
        reason = await asyncio.to_thread(sandbox.unavailable)
        if reason is not None:
            log.error(
                "sandbox: %s; shell stages will be refused (HAMSTER_SANDBOX=off runs them unsandboxed)",
                reason,
            )
            return
        egress = sandbox.egress_unavailable()
        if egress is not None:
            log.error("sandbox: %s; shell stages with that network will be refused", egress)
        log.info("sandbox: bubblewrap ready for shell stages")

    # 1. Take
    async def _schedule(self) -> None:
        await self.view.ready.wait()
        log.info(
            "stage worker: %d slot(s) for task(s) %s",
            self.slots,
            ", ".join(sorted(self.streams.catalog.tasks)),
        )
        while not self._draining:
            try:
                wake = await self.take()
                await self.set_aside()
                await self.reap()
                await self._write_marks()
            except Exception:
                log.exception("stage worker: scheduling failed; trying again")
                wake = 1.0
            await self.view.changed(timeout=wake)

    def free_slots(self) -> int:
        return self.slots - self.busy_slots()

    def busy_slots(self) -> int:
        return sum(1 for attempt in self.running.values() if attempt.holds_slot)

    async def take(self) -> float:
        """Claim what this worker can start now; how long until something may become claimable."""
        current = now()
        wake = 1.0
        if self.free_slots() <= 0:
            return wake
        for state in self.view.in_flight():
            if self.free_slots() <= 0 or self._draining:
                break  # a slot coming free looks again (``poke``)
            due = wakes_at(state)
            if due is not None:
                wake = min(wake, max(0.05, (due - current).total_seconds()))
            for start in claimable(state, current):
                if self.free_slots() <= 0 or self._draining:
                    break
                if (state.run_id, start.index) in self.running:
                    continue
                if state.run_id in self._claiming:
                    break  # one claim per run at a time: its siblings after this one is in the log
                task = self.streams.catalog.tasks.get(state.stages[start.index].task_name)
                offer = self.view.offer(state.run_id)
                if task is None or offer is None:
                    continue
                key = (state.run_id, start.index, start.attempt)
                seen = self._first_seen.setdefault(key, time.monotonic())
                if not self._holds_partition(state.run_id):
                    waited = time.monotonic() - seen
                    if waited < self.settings.claim_delay_s:
                        wake = min(wake, self.settings.claim_delay_s - waited)
                        continue
                latest = self.view.state(state.run_id)
                if latest is None:
                    break
                self._begin(latest, start, task, offer)
        self._first_seen = {k: v for k, v in self._first_seen.items() if k[0] in self.view.states}
        return wake

    def _holds_partition(self, run_id: str) -> bool:
        """Whether this worker's group agents hold the run's run-log partition (first call on its stages)."""
        return self._holds(partition_for(run_id, self.settings.partitions))

    def _holds(self, partition: int) -> bool:
        topic = self.streams.run_events.get_topic_name()
        try:
            assigned = self.streams.app.consumer.assignment()
        except Exception:  # the consumer is not started (yet), or stopping
            return False
        return any(tp.topic == topic and tp.partition == partition for tp in assigned)

    def _begin(self, state: RunState, start: Start, task: Task, offer: RunStage) -> None:
        """Take a slot for the stage and claim it in the background: claims of different runs go to the
        log together, and the scheduler goes on taking meanwhile."""
        attempt = Attempt(state.run_id, start.index, start.attempt, task, state.stages[start.index].name)
        self.running[(state.run_id, start.index)] = attempt
        self._claiming.add(state.run_id)
        self._update_slot_gauge()
        attempt.runner = asyncio.ensure_future(self._attempt(attempt, state, start, offer))

    async def _attempt(self, attempt: Attempt, state: RunState, start: Start, offer: RunStage) -> None:
        try:
            try:
                claimed = await self.claim(state, start)
            finally:
                self._claiming.discard(state.run_id)
            if claimed is not None and attempt.stopped_because is not None:
                await self._release(attempt)  # stopped (shutting down) while the claim was on its way
            elif claimed is not None:
                await self._run(attempt, claimed, offer)
        except Exception:
            log.exception("run %s: stage %s attempt %d failed on this worker", *attempt_names(attempt))
        finally:
            self.running.pop((attempt.run_id, attempt.index), None)
            self.view.forget_watch(attempt.run_id)
            self._update_slot_gauge()
            self.view.poke()  # a slot is free: look for work

    # 2. Claim
    async def claim(self, state: RunState, start: Start) -> RunState | None:
        """Append ``StageStarted`` with this worker's lease; the run's state then, or None when another
        claim came first (or the run moved on)."""
        stage = state.stages[start.index].name
        try:
            state = await self.recorder.record(
                state,
                StageStarted,
                stage=stage,
                index=start.index,
                attempt=start.attempt,
                lease_s=self.settings.stage_lease_s,
            )
        except (RecordRefused, InvalidTransition, RunEnded) as exc:
            log.info("run %s: claim of stage %s not taken: %s", state.run_id, stage, exc)
            return None
        if start.takeover:
            log.warning(
                "run %s: stage %s taken over as attempt %d: attempt %d lost its lease",
                state.run_id,
                stage,
                start.attempt,
                start.attempt - 1,
            )
        return state

    # 3. Run
    async def _run(self, attempt: Attempt, state: RunState, offer: RunStage) -> None:
        logs.bind(delivery_id=state.event.delivery_id, run_id=state.run_id)
        try:
            # Read at each attempt, so a rotated secret file is used at once; every one of them is masked.
            available = await asyncio.to_thread(read_source, self.settings.secrets_dir, self._environ)
        except ConfigurationError as exc:
            log.error("run %s: stage %s: %s", state.run_id, attempt.stage, exc)
            available = {}
        masked = sorted({*self.secrets, *available.values()}, key=len, reverse=True)
        stage_log = stage_logs.StageLog(
            state.run_id,
            attempt.stage,
            attempt.index,
            attempt.attempt,
            secrets=masked,
            max_bytes=self.settings.log_max_bytes,
        )
        sender = LogSender(self.streams.logs, stage_log)
        sender.start()
        try:
            try:
                outcome = await self._execute(attempt, state, offer, stage_log, available, masked)
            finally:
                # The work is over: its slot takes the next stage while the outcome is recorded.
                attempt.holds_slot = False
                self._update_slot_gauge()
                self.view.poke()
                await sender.close()  # the whole log is in <ns>.logs before the outcome is recorded
            if outcome is not None:
                outcome = masked_outcome(outcome, masked)
                await self._record(attempt, outcome)
            elif attempt.stopped_because == "shutdown":
                await self._release(attempt)
        except (RunEnded, RecordRefused, InvalidTransition) as exc:
            log.info("run %s: stage %s attempt %d: %s", *attempt_names(attempt), exc)
        except Exception:
            log.exception("run %s: stage %s could not be recorded", attempt.run_id, attempt.stage)

    async def _execute(
        self,
        attempt: Attempt,
        state: RunState,
        offer: RunStage,
        stage_log: stage_logs.StageLog,
        available: dict[str, str],
        masked: list[str],
    ) -> Outcome | None:
        """Run the attempt while holding its lease; None when it was stopped (``stopped_because``)."""
        ctx = self._context(attempt, state, offer, stage_log, available, masked)
        if isinstance(ctx, Failed):
            return ctx
        context = contextvars.copy_context()  # the attempt's own, where its logging finds its log
        context.run(stage_logs.CURRENT.set, stage_log.write)
        job = asyncio.get_running_loop().create_task(
            execute(
                attempt.task,
                ctx,
                killable=True,
                max_output_bytes=self.settings.max_output_bytes,
                processes=self.processes,
            ),
            context=context,
        )
        attempt.job = job
        await self._hold_lease(attempt, state, job)
        if attempt.stopped_because is not None:
            return None
        return job.result()

    def _context(
        self,
        attempt: Attempt,
        state: RunState,
        offer: RunStage,
        stage_log: stage_logs.StageLog,
        available: dict[str, str],
        masked: list[str],
    ) -> TaskContext | Failed:
        """What the attempt's task is given, or why it cannot run (a secret it is granted is missing)."""
        stage = state.stages[attempt.index]
        spec = self.streams.catalog.get(state.subscriber)
        granted = grant(available, spec.spec.secrets if spec else (), trusted=state.trusted)
        if granted.withheld:
            stage_log.write(
                "hamster",
                f"[hamster] secrets withheld: this run of a fork's pull request is not trusted "
                f"({', '.join(granted.withheld)}); a person with write permission can comment /ok-to-test\n",
            )
        if granted.missing:
            where = self.settings.secrets_dir or "HAMSTER_SECRETS_DIR (not set)"
            message = (
                f"subscriber {state.subscriber} is granted secret(s) {', '.join(granted.missing)}, which "
                f"neither {where} nor HAMSTER_SECRET_<NAME> holds"
            )
            return Failed("ConfigurationError", message, "", 0.0, retryable=False)
        return TaskContext(
            event=offer.event,
            params={**state.params, **stage.params},
            outputs=state.outputs_for(attempt.index),
            run_id=state.run_id,
            attempt=attempt.attempt,
            subscriber=state.subscriber,
            stage=attempt.stage,
            github=EventObjects(client_for(self.settings), offer.event),
            log_sink=stage_log,
            artifacts=for_stage(self.settings, state.run_id, attempt.stage, state.outputs_for(attempt.index)),
            secrets=granted.secrets,
            trusted=state.trusted,
            masked=tuple(masked),
        )

    async def _hold_lease(self, attempt: Attempt, state: RunState, job: asyncio.Task[Outcome]) -> None:
        """Renew the attempt's lease while ``job`` runs; stop it (``_stop``) when it may no longer run."""
        changed = self.view.run_changed(state.run_id)
        lease_s = self.settings.stage_lease_s
        held_until = state.stages[attempt.index].lease_until or now() + timedelta(seconds=lease_s)
        next_renewal = time.monotonic() + lease_s / 3
        while not job.done():
            timeout = max(0.0, next_renewal - time.monotonic())
            waiter = asyncio.ensure_future(changed.wait())
            await asyncio.wait([job, waiter], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            changed.clear()
            if job.done():
                break
            # Our own clock first: a worker that was frozen or cut off past its lease stops at once, before
            # it asks anyone (another worker may hold the stage by now).
            reason = None
            if now() >= held_until - timedelta(seconds=LEASE_MARGIN_S):
                reason = "its lease ran out before it could be renewed"
            reason = reason or self._lost(attempt)
            if reason is None and time.monotonic() >= next_renewal:
                held_until, reason = await self._renew(attempt, held_until)
                next_renewal = time.monotonic() + lease_s / 3
            if reason is not None:
                await self._stop(attempt, reason)
                return

    def _lost(self, attempt: Attempt) -> str | None:
        """Why the attempt may no longer run (the run ended, another attempt took over), or None."""
        ended = self.view.ended.get(attempt.run_id)
        if ended is not None:
            return f"the run is {ended.status}"
        state = self.view.state(attempt.run_id)
        if state is None:
            return "the run is no longer in flight"
        stage = state.stages[attempt.index]
        if stage.status == "skipped":
            return "the stage was skipped (fail_fast: a sibling failed)"
        if stage.attempt != attempt.attempt:
            return f"attempt {stage.attempt} took the stage over"
        return None

    async def _renew(self, attempt: Attempt, held_until: datetime) -> tuple[datetime, str | None]:
        until = now() + timedelta(seconds=self.settings.stage_lease_s)
        try:
            await self.recorder.renew(attempt.run_id, attempt.stage, attempt.index, attempt.attempt, until)
        except (RecordRefused, InvalidTransition, RunEnded):
            return held_until, self._lost(attempt)  # refused because the run moved on, or a race: recheck
        except Exception as exc:  # Kafka unreachable: keep trying until the lease runs out
            log.warning("run %s: lease of stage %s not renewed: %s", attempt.run_id, attempt.stage, exc)
            return held_until, None
        return until, None

    async def _stop(self, attempt: Attempt, reason: str) -> None:
        """Stop the attempt's work (cancel the coroutine, kill the child) for ``reason``."""
        attempt.stopped_because = reason
        log.warning(
            "run %s: stage %s attempt %d stopped: %s",
            attempt.run_id,
            attempt.stage,
            attempt.attempt,
            reason,
        )
        if attempt.job is not None:
            attempt.job.cancel()
            with contextlib.suppress(BaseException):
                await attempt.job

    # 4. Record, 5. hand off
    async def _record(self, attempt: Attempt, outcome: Outcome) -> None:
        # On the run as it is now: a sibling stage's claim or outcome may have come in meanwhile.
        which = {"stage": attempt.stage, "index": attempt.index, "attempt": attempt.attempt}
        if isinstance(outcome, Failed):
            retrying = outcome.retryable and attempt.attempt <= attempt.task.retries
            new = await self.recorder.record_on(
                attempt.run_id,
                StageFailed,
                **which,
                error_type=outcome.error_type,
                message=outcome.message,
                traceback=outcome.traceback,
                duration_ms=outcome.duration_ms,
                retrying=retrying,
                retry_at=retry_time(now(), attempt.attempt + 1) if retrying else None,
            )
        else:
            new = await self.recorder.record_on(
                attempt.run_id,
                StageSucceeded,
                **which,
                output=outcome.output,
                duration_ms=outcome.duration_ms,
            )
        await self.settle(new)

    async def settle(self, state: RunState) -> None:
        await self.recorder.settle(state, now())

    async def _release(self, attempt: Attempt) -> None:
        """Give the attempt's lease up, so another worker starts the stage at once."""
        with contextlib.suppress(RunEnded, RecordRefused, InvalidTransition):
            await self.recorder.renew(
                attempt.run_id, attempt.stage, attempt.index, attempt.attempt, now(), released=True
            )
            log.info(
                "run %s: stage %s attempt %d handed back", attempt.run_id, attempt.stage, attempt.attempt
            )

    # Shutting down
    async def drain(self) -> None:
        """Stop taking work; let running attempts finish within the grace time, release the rest."""
        self._draining = True
        self.view.poke()
        runners = [a.runner for a in self.running.values() if a.runner is not None]
        if not runners:
            return
        grace = self.settings.shutdown_grace_s
        log.info("stage worker stopping: %d attempt(s) running, %.0f s to finish", len(runners), grace)
        await self._leave_group()
        await asyncio.wait(runners, timeout=grace)
        for attempt in list(self.running.values()):
            if attempt.holds_slot:  # still at work (those recording their outcome finish that)
                await self._stop(attempt, "shutdown")
        pending = [r for r in runners if not r.done()]
        if pending:
            await asyncio.wait(pending, timeout=30)

    async def _leave_group(self) -> None:
        """Stop this worker's Faust consumer now, so it leaves the consumer group before its stages finish.

        Faust stops the app's services (this one among them) before its consumer. Waiting here for the
        stages with the consumer still in the group, a rebalance meanwhile (a worker joining, say) hands
        this worker partitions its stopped agents never read: a webhook on one waited until this worker
        exited. Its records are read again by their next owner from the last commit."""
        try:
            await self.streams.app.consumer.stop()
        except Exception:  # the stop goes on: the consumer is stopped again, later, by Faust
            log.exception("stage worker stopping: the consumer did not stop cleanly")

    async def set_aside(self) -> None:
        """Stage requests no worker can decode go to the dead letters, from the worker holding the run-log
        partition of the same number (every worker reads them; one sets them aside, once)."""
        poison, self.view.undecodable = self.view.undecodable, []
        for record, exc in poison:
            if not self._holds(record.partition):
                continue
            since_ms = int(record.timestamp) - 60_000  # a dead letter is written after its record
            where = (record.topic, record.partition, record.offset)
            topic = dead_letters_topic(self.settings)
            if await patiently(set_aside_already, self.settings, *where, since_ms, what=topic):
                continue
            task = record.topic.rsplit(".stage.", 1)[-1]
            await set_aside(self.streams, f"stage {task}", exc, *where, record.key, record.value)

    # The reaper
    async def reap(self) -> None:
        if time.monotonic() - self._last_reap < REAP_EVERY_S:
            return
        self._last_reap = time.monotonic()
        if time.monotonic() - self._last_expiry >= EXPIRE_ARTIFACTS_EVERY_S or not self._last_expiry:
            self._last_expiry = time.monotonic()
            self._expiry = asyncio.ensure_future(self.expire_artifacts())  # listing a store may take long
        current = now()
        for state in self.view.in_flight():
            if settle(state, current) is not None and self._holds_partition(state.run_id):
                # Owed and not written (its writer crashed in between), or an approval timed out.
                with contextlib.suppress(RunEnded, RecordRefused, InvalidTransition):
                    await self.settle(state)
                continue
            decision = overdue(
                state,
                current,
                touched_at=self.view.touched.get(state.run_id, state.requested_at),
                admitted=self.view.offer(state.run_id) is not None,
                governed=state.lane is not None,
                reoffer_after_s=self.settings.reoffer_after_s,
                stuck_after_s=self.settings.stuck_after_s,
            )
            if decision is None or not self._holds_partition(state.run_id):
                continue  # the holder of the run's partition reaps it, so workers do not race to
            try:
                if isinstance(decision, Reoffer):
                    await self.reoffer(state, decision.reason)
                elif isinstance(decision, GiveUp):
                    await self.recorder.record(state, RunFailed, reason=decision.reason)
                    log.warning("run %s: failed by the reaper: %s", state.run_id, decision.reason)
            except (RunEnded, RecordRefused, InvalidTransition) as exc:
                log.info("run %s: reaper: %s", state.run_id, exc)
            except HamsterError as exc:
                log.warning("run %s: reaper: %s", state.run_id, exc)

    async def expire_artifacts(self) -> None:
        """Remove the artifacts of runs past HAMSTER_RETENTION_DAYS, as the topics drop their records."""
        store = ArtifactStore.for_settings(self.settings)
        try:
            removed = await asyncio.to_thread(store.expire, timedelta(days=self.settings.retention_days))
        except Exception as exc:  # another worker removing the same run, the store unreachable: next time
            log.warning("artifacts: expiry failed: %s", exc)
            return
        if removed:
            log.info("artifacts: removed those of %d run(s) past the retention", len(removed))

    async def reoffer(self, state: RunState, reason: str) -> None:
        """Send a run whose stage request went missing to the workers again, from its webhook."""
        found = self.view.requests.get(state.run_id)
        if found is None or found[1].events_offset is None:
            await self.recorder.record(state, RunFailed, reason=f"{reason}, and its webhook is unknown")
            return
        offset, requested = found
        partition, position = found[1].events_offset
        topic = events_topic(self.settings)
        stored = await patiently(read_at, self.settings.kafka, topic, partition, position, what=topic)
        if stored is None:
            await self.recorder.record(
                state, RunFailed, reason=f"{reason}, and its webhook is past the events topic's retention"
            )
            return
        envelope = decode_envelope(stored.value)
        info = event_info(envelope.event, envelope.delivery_id, envelope.payload)
        request = stage_request(requested, info, offset)
        await send_acked(
            self.streams.stage_topic(request.stage), state.run_id, request.model_dump_json().encode()
        )
        log.warning("run %s: stage request sent again (%s)", state.run_id, reason)

    async def _write_marks(self) -> None:
        marks = self.view.due_marks()
        for partition, offset in (marks or {}).items():
            await send_acked(self.streams.run_marks, str(partition), str(offset).encode())

    def _update_slot_gauge(self) -> None:
        busy = self.busy_slots()
        self.streams.metrics.stage_slots.labels(state="busy").set(busy)
        self.streams.metrics.stage_slots.labels(state="free").set(self.slots - busy)


def attempt_names(attempt: Attempt) -> tuple[str, str, int]:
    return attempt.run_id, attempt.stage, attempt.attempt


def register(streams: Streams, view: RunView, recorder: RunRecorder) -> StageWorker:
    """Start this worker's stage slots with the app (after its tables recovered), stop them first."""
    worker = StageWorker(streams, view, recorder)
    streams.app.service(cast(Any, worker))  # an instance serves as well as a class (Faust's own code)
    return worker
