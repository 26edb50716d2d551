"""The run lifecycle: one state machine, written as data, and ``evolve(state, event)``.

Theory of operation
-------------------
A run is a fold over its records in the run log. ``RunRequested`` creates it ``queued`` with every stage
``pending``, except that a replay from stage k (``start_index``) starts with the stages before k
``succeeded`` and ``reused``, holding the original run's outputs. Its stages form a graph
(``hamster.pipelines.graph``): each stage names the stages it needs, and a record without that (written before
graphs) is a line, each stage needing the one before. ``StageStarted`` is allowed only for a stage whose
needs have all succeeded, never for an approval stage, and only with a higher attempt number than that
stage's last; several stages of a run may run at once. A ``StageFailed`` with ``retrying`` leaves the stage
``failed`` until its next ``StageStarted``, which may not come before the ``retry_at`` it names; one
without is final. ``StagesSkipped`` then marks the stages that can no longer run (its dependents; with
``fail_fast``, its matrix siblings, stopping those that run) ``skipped``. An approval stage ends by
``StageApproved`` (succeeded) or ``StageDenied`` (failed), and only once its needs succeeded; when it has
a timeout, its ``due_at`` is set as its needs succeed. ``RunSucceeded`` needs every stage ``succeeded``;
``RunFailed`` ends a run whose stages are all done with one failed (or, from the reaper and cancellation,
any time). ``RunRequested`` also says whether the run is trusted (``trust``, ``hamster.github.forks``): a
fork's pull request is not, and its stages get no secrets; the state keeps that decision for the stage
workers. Anything else raises ``InvalidTransition``: the state machine, not the agents, decides what is legal.

Claims and leases. ``StageStarted`` is how a worker claims a stage, and it holds the attempt for
``lease_s`` seconds; ``LeaseRenewed`` records from that worker extend it (they keep the run's ``seq``: they
are not steps of the run). A ``StageStarted`` on a stage that is still ``running`` takes it over as a new
attempt, and is refused while the running attempt's lease lasts. Records of an attempt that is no longer
the stage's current one are refused. Every worker folds the same log in the same order, so all agree on
which claim won and which records count; a refused record stays in the log and changes nothing.

    RUN:    (none) ─RunRequested→ queued ─StageStarted→ running ─RunSucceeded→ succeeded
                                    │                      ├─RunFailed→ failed
                                    └──RunFailed/RunCancelled──┴─RunCancelled→ cancelled
    STAGE:  pending ─StageStarted (needs succeeded)→ running ─StageSucceeded→ succeeded
               │                      ├─StageFailed→ failed ─StageStarted (retry, after retry_at)→ running
               │                      ├─LeaseRenewed (same worker and attempt)→ running
               │                      └─StageStarted (lease expired: takeover)→ running
               ├─StageApproved (approval stage, needs succeeded)→ succeeded
               ├─StageDenied (approval stage, needs succeeded)→ failed
               └─StagesSkipped (pending, running or failed)→ skipped
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hamster.errors import InvalidTransition
from hamster.intake.github_events import EventInfo
from hamster.pipelines.graph import StageSpec
from hamster.runs.events import (
    LeaseRenewed,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunRequested,
    RunSucceeded,
    StageApproved,
    StageDenied,
    StageFailed,
    StagesSkipped,
    StageStarted,
    StageSucceeded,
    Trust,
)

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
StageStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# (run status, event type) → next run status. ``None`` is "no run yet".
RUN_TRANSITIONS: dict[tuple[str | None, str], RunStatus] = {
    (None, "RunRequested"): "queued",
    ("queued", "StageStarted"): "running",
    ("running", "StageStarted"): "running",
    ("running", "StageSucceeded"): "running",
    ("running", "StageFailed"): "running",
    ("running", "LeaseRenewed"): "running",
    ("running", "StagesSkipped"): "running",
    ("queued", "StageApproved"): "running",
    ("running", "StageApproved"): "running",
    ("queued", "StageDenied"): "running",
    ("running", "StageDenied"): "running",
    ("running", "RunSucceeded"): "succeeded",
    ("running", "RunFailed"): "failed",
    ("queued", "RunFailed"): "failed",
    ("queued", "RunCancelled"): "cancelled",
    ("running", "RunCancelled"): "cancelled",
}

# (stage status, event type) → next stage status.
STAGE_TRANSITIONS: dict[tuple[str, str], StageStatus] = {
    ("pending", "StageStarted"): "running",
    ("running", "StageSucceeded"): "succeeded",
    ("running", "StageFailed"): "failed",
    ("failed", "StageStarted"): "running",
    ("running", "StageStarted"): "running",
    ("running", "LeaseRenewed"): "running",
    ("pending", "StageApproved"): "succeeded",
    ("pending", "StageDenied"): "failed",
    ("pending", "StagesSkipped"): "skipped",
    ("running", "StagesSkipped"): "skipped",
    ("failed", "StagesSkipped"): "skipped",
}


class StageState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    status: StageStatus = "pending"
    attempt: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    reused: bool = False  # succeeded in the original run; a replay from a later stage reuses its output
    worker: str | None = None  # who runs (or ran) the current attempt
    # Until when the running attempt is its worker's; None: no lease (records from before leases).
    lease_until: datetime | None = None
    retry_at: datetime | None = None  # failed and retrying: the next attempt starts no earlier
    # The graph (hamster.pipelines.graph): the stages it needs, the task that runs it (None: the task of its
    # name), a matrix instance's values and matrix, and for an approval stage until when it waits
    # (``due_at``).
    needs: tuple[str, ...] = ()
    task: str | None = None
    params: dict[str, Any] = {}
    matrix: str | None = None
    fail_fast: bool = False
    approval: bool = False
    timeout_s: float | None = None
    due_at: datetime | None = None

    @property
    def task_name(self) -> str:
        return self.task or self.name

    @property
    def done(self) -> bool:
        """It will not change by itself: succeeded, skipped, or failed without a retry to come."""
        if self.status == "failed":
            return not (self.error or {}).get("retrying")
        return self.status in ("succeeded", "skipped")


class RunState(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    status: RunStatus
    seq: int
    subscriber: str
    subscriber_version: str
    pipeline: tuple[str, ...]
    params: dict[str, Any]
    event: EventInfo
    stages: tuple[StageState, ...]
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    last_hash: str = ""  # the audit chain: hash of the run's latest record, the next one's prev_hash
    attempt: int = 1
    original_run_id: str | None = None
    replay: bool = False
    lane: str | None = None  # the concurrency lane it holds while in flight (hamster.subscribers.concurrency)
    # Where its latest record is in the run log (offset in the run's partition).
    log_offset: int | None = None
    # Whether its tasks get their subscriber's secrets and may write to GitHub (hamster.github.forks); None: a
    # run requested before forks were told apart.
    trust: Trust | None = None

    @property
    def trusted(self) -> bool:
        return self.trust is None or self.trust.trusted

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    def outputs(self) -> dict[str, Any]:
        """Outputs of the stages that succeeded, by stage name."""
        return {s.name: s.output for s in self.stages if s.status == "succeeded"}

    def next_index(self) -> int | None:
        """The first stage that has not succeeded, or None when all have."""
        return next((i for i, s in enumerate(self.stages) if s.status != "succeeded"), None)

    def index_of(self, name: str) -> int:
        return next(i for i, s in enumerate(self.stages) if s.name == name)

    def ready(self, index: int) -> bool:
        """Whether every stage that stage ``index`` needs has succeeded."""
        by_name = {s.name: s for s in self.stages}
        return all(by_name[n].status == "succeeded" for n in self.stages[index].needs)

    def ancestors(self, index: int) -> set[str]:
        """The stages stage ``index`` needs, directly or through others."""
        by_name = {s.name: s for s in self.stages}
        found: set[str] = set()
        todo = list(self.stages[index].needs)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(by_name[name].needs)
        return found

    def dependents(self, name: str) -> list[int]:
        """The stages that need stage ``name``, directly or through others, in pipeline order."""
        return [i for i in range(len(self.stages)) if name in self.ancestors(i)]

    def outputs_for(self, index: int) -> dict[str, Any]:
        """What stage ``index`` sees in ``ctx.outputs``: the outputs of its ancestors, by stage name."""
        ancestors = self.ancestors(index)
        return {s.name: s.output for s in self.stages if s.name in ancestors and s.status == "succeeded"}


StageEvent = StageStarted | StageSucceeded | StageFailed | LeaseRenewed
Decision = StageApproved | StageDenied


def _stage(state: RunState, event: StageEvent | Decision) -> StageState:
    if not 0 <= event.index < len(state.stages) or state.stages[event.index].name != event.stage:
        raise InvalidTransition(
            state.run_id, state.status, event.type, f"no stage {event.index}:{event.stage}"
        )
    return state.stages[event.index]


def _decided(state: RunState, event: Decision) -> StageState:
    """An approval stage approved or denied: only an approval stage, only once its needs succeeded."""
    stage = _stage(state, event)
    new_status = STAGE_TRANSITIONS.get((stage.status, event.type))
    if new_status is None:
        raise InvalidTransition(state.run_id, f"{stage.name}={stage.status}", event.type)
    if not stage.approval:
        raise InvalidTransition(state.run_id, state.status, event.type, f"{stage.name} is no approval stage")
    if not state.ready(event.index):
        raise InvalidTransition(
            state.run_id, state.status, event.type, f"{stage.name} still waits for its needs"
        )
    if isinstance(event, StageApproved):
        output = {"approved_by": event.by, "via": event.via, "at": event.occurred_at.isoformat()}
        return stage.model_copy(
            update={"status": new_status, "output": output, "finished_at": event.occurred_at}
        )
    error = {"type": "Denied", "message": event.reason, "by": event.by, "via": event.via, "retrying": False}
    return stage.model_copy(update={"status": new_status, "error": error, "finished_at": event.occurred_at})


def _skipped(state: RunState, event: StagesSkipped) -> tuple[StageState, ...]:
    stages = list(state.stages)
    if len(event.stages) != len(event.indexes) or not event.indexes:
        raise InvalidTransition(state.run_id, state.status, event.type, "stages and indexes disagree")
    for index, name in zip(event.indexes, event.stages, strict=True):
        if not 0 <= index < len(stages) or stages[index].name != name:
            raise InvalidTransition(state.run_id, state.status, event.type, f"no stage {index}:{name}")
        stage = stages[index]
        if STAGE_TRANSITIONS.get((stage.status, event.type)) is None or stage.done:
            raise InvalidTransition(state.run_id, f"{stage.name}={stage.status}", event.type)
        stages[index] = stage.model_copy(
            update={
                "status": "skipped",
                "lease_until": None,
                "retry_at": None,
                "finished_at": event.occurred_at,
            }
        )
    return tuple(stages)


def _arm_approvals(stages: tuple[StageState, ...], at: datetime) -> tuple[StageState, ...]:
    """Approval stages whose needs just succeeded start their timeout now."""
    by_name = {s.name: s for s in stages}
    out = []
    for stage in stages:
        waiting = stage.approval and stage.status == "pending" and stage.due_at is None
        if waiting and stage.timeout_s and all(by_name[n].status == "succeeded" for n in stage.needs):
            stage = stage.model_copy(update={"due_at": at + timedelta(seconds=stage.timeout_s)})
        out.append(stage)
    return tuple(out)


def _started(state: RunState, stage: StageState, event: StageStarted) -> StageState:
    def refuse(detail: str) -> InvalidTransition:
        return InvalidTransition(state.run_id, state.status, event.type, detail)

    if stage.approval:
        raise refuse(f"stage {event.stage} waits for a person's approval")
    if not state.ready(event.index):
        raise refuse(f"stage {event.stage} still waits for {', '.join(stage.needs)}")
    if event.attempt <= stage.attempt:
        raise refuse(f"attempt {event.attempt} after attempt {stage.attempt}")
    if stage.status == "running" and stage.lease_until is not None and event.occurred_at < stage.lease_until:
        raise refuse(f"attempt {stage.attempt} is {stage.worker}'s until {stage.lease_until.isoformat()}")
    if stage.status == "failed" and stage.retry_at is not None and event.occurred_at < stage.retry_at:
        raise refuse(f"attempt {event.attempt} may not start before {stage.retry_at.isoformat()}")
    lease = None if event.lease_s is None else event.occurred_at + timedelta(seconds=event.lease_s)
    return stage.model_copy(
        update={
            "status": "running",
            "attempt": event.attempt,
            "started_at": event.occurred_at,
            "finished_at": None,
            "output": None,
            "error": None,
            "duration_ms": None,
            "worker": event.worker,
            "lease_until": lease,
            "retry_at": None,
        }
    )


def _evolve_stage(state: RunState, event: StageEvent) -> StageState:
    stage = _stage(state, event)
    new_status = STAGE_TRANSITIONS.get((stage.status, event.type))
    if new_status is None:
        raise InvalidTransition(state.run_id, f"{stage.name}={stage.status}", event.type)
    if isinstance(event, StageStarted):
        return _started(state, stage, event)
    if event.attempt != stage.attempt:
        raise InvalidTransition(
            state.run_id,
            state.status,
            event.type,
            f"attempt {event.attempt} is not the running attempt {stage.attempt}",
        )
    if isinstance(event, LeaseRenewed):
        if event.worker != stage.worker:
            raise InvalidTransition(
                state.run_id, state.status, event.type, f"attempt {stage.attempt} is {stage.worker}'s"
            )
        return stage.model_copy(update={"lease_until": event.occurred_at if event.released else event.until})
    if isinstance(event, StageSucceeded):
        return stage.model_copy(
            update={
                "status": new_status,
                "output": event.output,
                "finished_at": event.occurred_at,
                "duration_ms": event.duration_ms,
                "lease_until": None,
            }
        )
    return stage.model_copy(
        update={
            "status": new_status,
            "finished_at": event.occurred_at,
            "duration_ms": event.duration_ms,
            "lease_until": None,
            "retry_at": event.retry_at if event.retrying else None,
            "error": {
                "type": event.error_type,
                "message": event.message,
                "traceback": event.traceback,
                "retrying": event.retrying,
            },
        }
    )


def _first_stages(event: RunRequested) -> tuple[StageState, ...]:
    """Every stage pending, except those a replay from ``start_index`` reuses from the original run."""
    reused = event.pipeline[: event.start_index]
    if not 0 <= event.start_index < len(event.pipeline) or set(event.reused_outputs) != set(reused):
        raise InvalidTransition(
            event.run_id,
            "None",
            event.type,
            f"start_index {event.start_index} needs the outputs of exactly {list(reused)}",
        )
    if event.graph and set(event.graph) != set(event.pipeline):
        raise InvalidTransition(
            event.run_id, "None", event.type, "the graph does not name the pipeline's stages"
        )
    line = {n: StageSpec(needs=tuple(event.pipeline[i - 1 : i])) for i, n in enumerate(event.pipeline)}
    specs = event.graph or line
    for i, name in enumerate(event.pipeline):
        if not set(specs[name].needs) <= set(event.pipeline[:i]):
            raise InvalidTransition(
                event.run_id, "None", event.type, f"stage {name} needs a stage that does not come before it"
            )
    stages = tuple(
        StageState(
            name=n,
            **specs[n].model_dump(),
            **(
                {"status": "succeeded", "output": event.reused_outputs[n], "reused": True}
                if n in event.reused_outputs
                else {}
            ),
        )
        for n in event.pipeline
    )
    return _arm_approvals(stages, event.occurred_at)


def evolve(state: RunState | None, event: RunEvent) -> RunState:
    """The run after ``event``. Raises ``InvalidTransition`` when the event does not fit the run."""
    current = state.status if state else None
    run_id = state.run_id if state else event.run_id
    new_status = RUN_TRANSITIONS.get((current, event.type))
    if new_status is None:
        raise InvalidTransition(run_id, str(current), event.type)
    if event.run_id != run_id:
        raise InvalidTransition(run_id, str(current), event.type, f"record of run {event.run_id}")
    if isinstance(event, RunRequested):
        return RunState(
            run_id=event.run_id,
            status=new_status,
            seq=event.seq,
            subscriber=event.subscriber,
            subscriber_version=event.subscriber_version,
            pipeline=event.pipeline,
            params=event.params,
            event=event.event,
            stages=_first_stages(event),
            requested_at=event.occurred_at,
            last_hash=event.hash,
            attempt=event.attempt,
            original_run_id=event.original_run_id,
            replay=event.replay,
            lane=event.lane,
            trust=event.trust,
        )
    assert state is not None  # RUN_TRANSITIONS admits only RunRequested without a state
    if isinstance(event, LeaseRenewed):
        # Not a step of the run: it names the run's current step, and leaves the chain where it is.
        if event.seq != state.seq:
            raise InvalidTransition(run_id, state.status, event.type, f"seq {event.seq} at {state.seq}")
        stages = list(state.stages)
        stages[event.index] = _evolve_stage(state, event)
        return state.model_copy(update={"stages": tuple(stages)})
    if event.seq != state.seq + 1:
        raise InvalidTransition(run_id, state.status, event.type, f"seq {event.seq} after {state.seq}")
    update: dict[str, Any] = {"status": new_status, "seq": event.seq, "last_hash": event.hash}
    if isinstance(event, StageStarted | StageSucceeded | StageFailed | StageApproved | StageDenied):
        stages = list(state.stages)
        changed = (
            _decided(state, event)
            if isinstance(event, StageApproved | StageDenied)
            else _evolve_stage(state, event)
        )
        stages[event.index] = changed
        update["stages"] = _arm_approvals(tuple(stages), event.occurred_at)
        if state.started_at is None:
            update["started_at"] = event.occurred_at
    elif isinstance(event, StagesSkipped):
        update["stages"] = _skipped(state, event)
    elif isinstance(event, RunSucceeded):
        if state.next_index() is not None:
            raise InvalidTransition(run_id, state.status, event.type, "not every stage succeeded")
        update["finished_at"] = event.occurred_at
    elif isinstance(event, RunFailed | RunCancelled):
        update["finished_at"] = event.occurred_at
        update["reason"] = event.reason
    return state.model_copy(update=update)


def fold(events: list[RunEvent]) -> RunState | None:
    state: RunState | None = None
    for event in events:
        state = evolve(state, event)
    return state
