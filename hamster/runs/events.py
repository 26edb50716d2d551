"""What happens to a run, as past-tense events: the records of ``<namespace>.run-events``.

Every record has one envelope (ids, per-run sequence number, time, schema version, the worker that wrote
it) and a ``type`` discriminator. The log is append-only and keyed by run id, so a run's records stay in
order on one partition.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hamster.intake.github_events import EventInfo
from hamster.pipelines.graph import StageSpec, admission_index

SCHEMA_VERSION = 1


def now() -> datetime:
    return datetime.now(UTC)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _RunEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    event_id: str
    run_id: str
    seq: int
    occurred_at: datetime = Field(default_factory=now)
    worker: str = Field(default_factory=this_worker)
    # The audit chain (hamster.runs.audit): the hash of the run's previous record, and this record's own.
    prev_hash: str = ""
    hash: str = ""


class Trust(BaseModel):
    """What a run may have (``hamster.github.forks``): ``trusted`` (its subscriber's secrets, GitHub writes
    from its tasks), why (``not-a-fork``, ``fork``, ``trust-forks``, ``ok-to-test``), and who vouched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trusted: bool
    reason: Literal["not-a-fork", "fork", "trust-forks", "ok-to-test"]
    by: str | None = None  # ``ok-to-test``: the GitHub login who commented it
    head_repo: str | None = None  # a pull request's head repository (None: deleted, or no pull request)


class RunRequested(_RunEvent):
    """A subscriber matched an event: a run is queued. Carries everything the run is configured with."""

    type: Literal["RunRequested"] = "RunRequested"
    subscriber: str
    subscriber_version: str
    pipeline: tuple[str, ...]  # the stages' names, each after the stages it needs
    # What each stage needs, runs and is (hamster.pipelines.graph); empty: a line, each stage needing the one
    # before (every record written before graphs existed).
    graph: dict[str, StageSpec] = {}
    params: dict[str, Any] = {}
    event: EventInfo  # the trigger, without its payload (that stays in the events topic)
    events_offset: tuple[int, int] | None = None  # (partition, offset) of the webhook in the events topic
    # Replays (hamster.runs.replay). ``replay_of``: the original delivery id of a replayed webhook;
    # ``original_run_id``: the run this one reruns or replays; ``attempt``: the run's attempt number.
    replay: bool = False
    replay_of: str | None = None
    original_run_id: str | None = None
    attempt: int = 1
    report: bool = True  # False: write nothing to GitHub (replays, unless `--report`)
    # ``replay run --from-stage``: stages before ``start_index`` are not run again, their outputs come
    # from the original run's log.
    start_index: int = 0
    reused_outputs: dict[str, Any] = {}
    # Concurrency control (hamster.subscribers.concurrency): the lane the run holds while in flight, when its
    # subscriber limits concurrency; None: the run starts at once and nothing waits for it.
    lane: str | None = None
    # Who asked for this run when a person did (a rerun from GitHub's "Re-run": the GitHub login).
    requested_by: str | None = None
    # Forks (hamster.github.forks): whether the run gets secrets and GitHub writes, and why. None: a record
    # written before forks were told apart, trusted as it was then.
    trust: Trust | None = None


class StageStarted(_RunEvent):
    """A worker claimed the stage as ``attempt`` and runs it, holding a lease of ``lease_s`` seconds.

    It is also the claim: when several workers claim one stage, the run log's order decides, and the state
    machine refuses every claim after the first (``hamster.runs.lifecycle``).
    """

    type: Literal["StageStarted"] = "StageStarted"
    stage: str
    index: int
    attempt: int
    lease_s: float | None = None  # None: written before leases existed; the attempt never expires


class StageSucceeded(_RunEvent):
    type: Literal["StageSucceeded"] = "StageSucceeded"
    stage: str
    index: int
    attempt: int
    output: Any = None
    duration_ms: float


class StageFailed(_RunEvent):
    type: Literal["StageFailed"] = "StageFailed"
    stage: str
    index: int
    attempt: int
    error_type: str
    message: str
    traceback: str = ""
    duration_ms: float
    retrying: bool = False
    retry_at: datetime | None = None  # with ``retrying``: the next attempt starts no earlier than this


class LeaseRenewed(_RunEvent):
    """The worker running ``attempt`` still runs it: its lease now lasts ``until``. ``released``: it gave the
    attempt up (shutting down), so another worker may start the stage again at once.

    Not a step of the run: it carries the run's current ``seq`` rather than the next, and stays out of the
    audit chain (it is not sealed).
    """

    type: Literal["LeaseRenewed"] = "LeaseRenewed"
    stage: str
    index: int
    attempt: int
    until: datetime
    released: bool = False


class StagesSkipped(_RunEvent):
    """These stages will not run: a stage they need failed, or (``fail_fast``) a sibling in their matrix
    did. A running one among them is stopped: its attempt's records are refused from now on."""

    type: Literal["StagesSkipped"] = "StagesSkipped"
    stages: tuple[str, ...]
    indexes: tuple[int, ...]
    because: str  # the stage whose failure skips them
    reason: str


class StageApproved(_RunEvent):
    """A person approved an approval stage: ``by`` (a GitHub login, or the dashboard), ``via`` how."""

    type: Literal["StageApproved"] = "StageApproved"
    stage: str
    index: int
    by: str
    via: str  # "comment", "check_run" (its Approve button) or "dashboard"


class StageDenied(_RunEvent):
    """An approval stage failed: a person denied it (``by``), or nobody decided in time (``by`` None)."""

    type: Literal["StageDenied"] = "StageDenied"
    stage: str
    index: int
    by: str | None = None
    via: str | None = None
    reason: str


class RunSucceeded(_RunEvent):
    type: Literal["RunSucceeded"] = "RunSucceeded"


class RunFailed(_RunEvent):
    type: Literal["RunFailed"] = "RunFailed"
    stage: str | None = None
    reason: str


class RunCancelled(_RunEvent):
    type: Literal["RunCancelled"] = "RunCancelled"
    reason: str


RunEvent = Annotated[
    RunRequested
    | StageStarted
    | StageSucceeded
    | StageFailed
    | LeaseRenewed
    | StagesSkipped
    | StageApproved
    | StageDenied
    | RunSucceeded
    | RunFailed
    | RunCancelled,
    Field(discriminator="type"),
]
RUN_EVENT = TypeAdapter(RunEvent)


def encode_run_event(event: RunEvent) -> bytes:
    return event.model_dump_json().encode()


def decode_run_event(raw: bytes) -> RunEvent:
    return RUN_EVENT.validate_json(raw)


class RunStage(BaseModel):
    """A command on a stage topic: run this run from stage ``index`` on. It admits the run to the workers
    (a run whose subscriber limits concurrency waits for its lane first) and carries what every stage of
    it needs and the run log does not hold: the webhook's payload. Every worker reads every stage topic;
    which worker runs which stage is decided by claims in the run log (``agents.stages``), and the stages
    after this one need no command of their own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    index: int
    attempt: int = 1
    requested: RunRequested  # the run's configuration, so any worker can rebuild its state
    event: EventInfo  # the trigger, with its payload
    outputs: dict[str, Any] = {}  # unused since outputs come from the run log; kept to read old records
    not_before: datetime | None = None  # unused since retries are scheduled in the run log; as above
    requested_offset: int | None = None  # where the run's RunRequested is in its run-log partition

    @property
    def stage(self) -> str:
        """The task of stage ``index``: its stage topic is named after it."""
        name = self.requested.pipeline[self.index]
        spec = self.requested.graph.get(name)
        return spec.task or name if spec is not None else name


def stage_request(
    requested: RunRequested, event: EventInfo, requested_offset: int | None = None, index: int | None = None
) -> RunStage:
    """The one constructor of a stage request: the command that admits the run ``requested`` to the
    workers, with its webhook ``event``. It goes to the topic of the run's first stage a task runs, unless
    ``index`` names another (a rerun from a later stage). ``requested_offset``: where ``requested`` is in
    the run log, when it is there yet."""
    return RunStage(
        run_id=requested.run_id,
        index=admission_index(requested.pipeline, requested.graph) if index is None else index,
        requested=requested,
        event=event,
        outputs=requested.reused_outputs,
        requested_offset=requested_offset,
    )


class DecideStage(BaseModel):
    """A command on the run-control topic: approve (or deny) the approval stage ``stage``, for ``by``
    (a GitHub login who commented ``/approve`` or clicked Approve on the run's check run, or the
    dashboard). Carried out by any worker, as ``CancelRun`` is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["DecideStage"] = "DecideStage"
    run_id: str
    stage: str
    approve: bool
    by: str
    via: str  # "comment", "check_run" or "dashboard"


class CancelRun(BaseModel):
    """A command on the run-control topic: end this run as cancelled, whatever it is doing.

    Any worker can carry it out: every worker holds the states of the runs in flight
    (``agents.plumbing.run_view``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["CancelRun"] = "CancelRun"
    run_id: str
    reason: str
    requested: RunRequested | None = None  # not needed since every worker holds in-flight runs' states
    requested_offset: int | None = None  # as in RunStage


class StartRun(BaseModel):
    """A command on the run-control topic: start this run (a rerun asked for from the CLI, the dashboard or
    GitHub). A worker appends its ``RunRequested`` through its recorder, like every run-log record, then
    sends ``request`` (its first stage request) to the workers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["StartRun"] = "StartRun"
    requested: RunRequested
    request: RunStage

    @property
    def run_id(self) -> str:
        return self.requested.run_id


RunControl = Annotated[CancelRun | StartRun | DecideStage, Field(discriminator="type")]
RUN_CONTROL: TypeAdapter[CancelRun | StartRun | DecideStage] = TypeAdapter(RunControl)


def decode_run_control(raw: bytes) -> CancelRun | StartRun | DecideStage:
    """A run-control command; one written before commands had a ``type`` is a ``CancelRun``."""
    data = json.loads(raw)
    if isinstance(data, dict) and "type" not in data:
        data["type"] = "CancelRun"
    return RUN_CONTROL.validate_python(data)
