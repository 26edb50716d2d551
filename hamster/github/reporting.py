"""What to tell GitHub about a run, decided from its records: pure, so a replay decides the same again.

Theory of operation
-------------------
The reporting agent folds each run's records into a small ``ReportState`` (kept in a table keyed by run id,
co-partitioned with the run log) and makes the GitHub calls ``report`` returns for each record:

    RunRequested            → status ``pending``; check run created (``queued``)
    StageStarted            → check run ``in_progress``, naming the stage
    StageSucceeded/Failed   → check run summary updated
    StageApproved/Denied    → check run summary updated, naming who decided
    StagesSkipped           → check run summary updated (the stages ``skipped``)
    a matrix instance's     → a commit status of its own, context ``<context>/<instance name>``:
      Started/Succeeded/      ``pending``, ``success``, ``failure`` (a failure that will not be retried),
      Failed/Skipped          ``error`` (skipped)
    RunSucceeded            → status ``success``; check run concluded ``success``
    RunFailed               → status ``failure`` naming the stage (``error`` when no stage ran); check
                              run concluded ``failure``
    RunCancelled            → status ``error``; check run concluded ``cancelled``

While the run goes, its check run offers buttons (``hamster.github.check_actions.buttons``): Cancel, and
Approve and Deny while an approval stage waits (its needs succeeded, nobody decided yet). Each update sends
the buttons anew, so they go as the approval is decided, and all go once the run ends.

Idempotency: the state remembers the last record's ``seq``. A record at or below it was reported already
(the agent stores the new state only after GitHub accepted the calls), so processing records again after a
crash posts nothing twice and never sends an older status after a newer one. A crash between GitHub
accepting a call and the state being stored repeats only that record's calls: the same status again (GitHub
keeps the latest per context), and the check run is looked up by its ``external_id`` before being created.

Comments Hamster writes carry a hidden marker, so a comment of its own never starts a run
(``is_own_comment``), as the original Hamster did.

Deployments: a run started by a ``deployment`` event reports to that deployment instead of the commit
(``for_deployment``): deployment status ``queued`` where others get ``pending``, ``in_progress`` at each
stage, then ``success``, ``failure`` or ``error``, each with the run's page as ``log_url``. A stage whose
output holds an ``environment_url`` (an http(s) URL) names where the deployment can be seen: the state keeps
the latest one, and the ``in_progress`` and ``success`` statuses after it carry it (``failure`` and
``error`` do not: GitHub's "View deployment" link would lead to what did not deploy). Their descriptions end
with ``(hamster run <id>)``, so the ``deployment_status`` webhooks they cause start no run
(``is_own_deployment_status``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict

from hamster.github.check_actions import CheckButton, buttons
from hamster.intake.github_events import EventInfo
from hamster.runs.events import (
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
)

DESCRIPTION_MAX = 140  # GitHub truncates nothing: a longer commit status description is refused
SUMMARY_MAX = 65535  # the Checks API's limit on output.summary
MARKER = "<!-- hamster:"
_MARKER = re.compile(r"<!-- hamster:[^>]*-->")
COMMENT_EVENTS = frozenset({"issue_comment", "pull_request_review_comment", "commit_comment"})

StatusState = Literal["pending", "success", "failure", "error"]


@dataclass(frozen=True)
class ReportOptions:
    """How a subscriber wants its runs reported (from ``Subscriber(report=, status_context=, checks=)``)."""

    status: bool = False
    checks: bool = False
    context: str = "hamster"

    @property
    def any(self) -> bool:
        return self.status or self.checks


def options_for(name: str, report: bool, status_context: str | None, checks: bool) -> ReportOptions:
    return ReportOptions(status=report, checks=checks, context=status_context or f"hamster/{name}")


class ReportState(BaseModel):
    """What the reporting agent knows of one run: where to report, and how far it has reported."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    seq: int
    repo: str | None
    sha: str | None
    status: bool
    checks: bool
    context: str
    stages: dict[str, str]  # stage name → pending/running/succeeded/failed/skipped, in pipeline order
    instances: tuple[str, ...] = ()  # the matrix instances among them: each gets a status of its own
    approvals: dict[str, tuple[str, ...]] = {}  # the approval stages among them → the stages they need
    check_run_id: int | None = None
    deployment_id: int | None = None  # the deployment the run reports to (see ``for_deployment``)
    environment_url: str | None = None  # the latest a stage of that deployment's run returned
    installation_id: int | None = None  # the GitHub App installation the run reports as (its webhook's)
    # When the run ended (epoch seconds): the reporting agent forgets the run some time after (``expired``).
    ended_at: float | None = None


@dataclass(frozen=True)
class SetStatus:
    state: StatusState
    description: str
    target_url: str | None
    context: str | None = None  # None: the run's context; a matrix instance's status names its own


@dataclass(frozen=True)
class StartCheck:
    """Create the run's check run, or find the one an earlier try created (by ``external_id``)."""

    external_id: str
    details_url: str | None
    title: str
    summary: str
    actions: tuple[CheckButton, ...] = ()


@dataclass(frozen=True)
class UpdateCheck:
    status: Literal["in_progress", "completed"]
    title: str
    summary: str
    conclusion: Literal["success", "failure", "cancelled"] | None = None
    actions: tuple[CheckButton, ...] = ()  # the check run's buttons from now on (none once completed)


@dataclass(frozen=True)
class RemoveWorkspace:
    run_id: str


DeploymentState = Literal["queued", "in_progress", "success", "failure", "error"]


@dataclass(frozen=True)
class SetDeploymentStatus:
    """A status of the run's deployment (https://docs.github.com/en/rest/deployments/statuses): ``log_url``
    is the run's page, ``environment_url`` where the deployed environment is (see ``environment_url_of``)."""

    state: DeploymentState
    description: str
    log_url: str | None
    environment_url: str | None = None


Action = SetStatus | StartCheck | UpdateCheck | RemoveWorkspace | SetDeploymentStatus


def run_url(public_url: str | None, run_id: str) -> str | None:
    return f"{public_url.rstrip('/')}/runs/{run_id}" if public_url else None


def _short(text: str, limit: int = DESCRIPTION_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def waiting(state: ReportState) -> list[str]:
    """The approval stages that wait for a person: pending, and every stage they need succeeded."""
    return [
        name
        for name, needs in state.approvals.items()
        if state.stages.get(name) == "pending" and all(state.stages.get(n) == "succeeded" for n in needs)
    ]


def _summary(state: ReportState) -> str:
    shown = {**state.stages, **dict.fromkeys(waiting(state), "waiting for approval")}
    lines = ["| stage | status |", "|---|---|", *(f"| {name} | {st} |" for name, st in shown.items())]
    return _short("\n".join(lines), SUMMARY_MAX)


def _stage_update(state: ReportState, stage: str, status: str) -> ReportState:
    return state.model_copy(update={"stages": {**state.stages, stage: status}})


def report(
    state: ReportState | None,
    event: RunEvent,
    options: ReportOptions | None,
    public_url: str | None = None,
    replay: bool = False,
) -> tuple[ReportState | None, list[Action]]:
    """The run's report state after ``event``, and the GitHub calls to make for it, in order.

    ``options`` are the subscriber's (looked up for ``RunRequested`` only; later records use the state's).
    A replayed run reports nothing unless its options ask for it; workspaces are removed regardless.
    """
    final = isinstance(event, RunSucceeded | RunFailed | RunCancelled)
    cleanup: list[Action] = [RemoveWorkspace(event.run_id)] if final else []
    if state is not None and event.seq <= state.seq:
        return state, []  # reported before this crash or redelivery
    url = run_url(public_url, event.run_id)
    if isinstance(event, RunRequested):
        if options is None or not options.any or replay or not event.event.repo or not event.event.sha:
            return None, cleanup
        return _requested(event, options, url)
    if state is None:
        return None, cleanup  # a run that reports nothing (or whose start was never seen)
    new = state.model_copy(update={"seq": event.seq})
    actions = _instance_statuses(new, event, url)
    if isinstance(
        event, StageStarted | StagesSkipped | StageSucceeded | StageFailed | StageApproved | StageDenied
    ):
        new, update = _stage_event(new, event)
        actions.extend([update] if new.checks else [])
    elif isinstance(event, RunSucceeded | RunFailed | RunCancelled):
        actions.extend(_run_ended(new, event, url))
        new = new.model_copy(update={"ended_at": event.occurred_at.timestamp()})
    return new, for_deployment(new, event, actions, url) + cleanup


def _requested(
    event: RunRequested, options: ReportOptions, url: str | None
) -> tuple[ReportState, list[Action]]:
    """The report state of a run that starts, and its first status and check run."""
    new = ReportState(
        run_id=event.run_id,
        seq=event.seq,
        repo=event.event.repo,
        sha=event.event.sha,
        status=options.status,
        checks=options.checks,
        context=options.context,
        # A rerun from a later stage starts with the stages before it succeeded (their outputs reused).
        stages={n: "succeeded" if n in event.reused_outputs else "pending" for n in event.pipeline},
        instances=tuple(n for n, spec in event.graph.items() if spec.matrix is not None),
        approvals={n: spec.needs for n, spec in event.graph.items() if spec.approval},
        deployment_id=deployment_of(event),
        installation_id=event.event.installation_id,
    )
    actions: list[Action] = []
    if new.status:
        actions.append(SetStatus("pending", _short(f"queued: {' → '.join(event.pipeline)}"), url))
    if new.checks:
        actions.append(StartCheck(event.run_id, url, "queued", _summary(new), buttons(waiting(new))))
    return new, for_deployment(new, event, actions, url)


def _stage_event(
    new: ReportState,
    event: StageStarted | StagesSkipped | StageSucceeded | StageFailed | StageApproved | StageDenied,
) -> tuple[ReportState, UpdateCheck]:
    """The state after a stage started, was skipped or ended, and the check run's update saying so."""
    if isinstance(event, StageStarted):
        new = _stage_update(new, event.stage, "running")
        return new, _going(new, f"running {event.stage}")
    if isinstance(event, StagesSkipped):
        for stage in event.stages:
            new = _stage_update(new, stage, "skipped")
        return new, _going(new, _short(event.reason))
    failed = isinstance(event, StageFailed | StageDenied)
    if isinstance(event, StageSucceeded) and new.deployment_id is not None:
        returned = environment_url_of(event.output)
        if returned is not None:
            new = new.model_copy(update={"environment_url": returned})
    new = _stage_update(new, event.stage, "failed" if failed else "succeeded")
    verb = "failed" if failed else "succeeded"
    if isinstance(event, StageApproved | StageDenied) and event.by is not None:
        verb = f"{'denied' if failed else 'approved'} by {event.by}"
    return new, _going(new, _short(f"{event.stage} {verb}"))


def _run_ended(
    new: ReportState, event: RunSucceeded | RunFailed | RunCancelled, url: str | None
) -> list[Action]:
    """The final status and check run conclusion of a run that ended."""
    actions: list[Action] = []
    if isinstance(event, RunSucceeded):
        if new.status:
            actions.append(SetStatus("success", _short(f"all {len(new.stages)} stages passed"), url))
        if new.checks:
            actions.append(UpdateCheck("completed", "passed", _summary(new), "success"))
    elif isinstance(event, RunFailed):
        if event.stage is not None and event.stage in new.stages:
            state_name: StatusState = "failure"
            prefix = f"stage {event.stage} failed"
            description = event.reason if event.reason.startswith(prefix) else f"{prefix}: {event.reason}"
            if new.stages.get(event.stage) == "pending":  # never ran: e.g. its task is not registered
                state_name, description = "error", event.reason
        else:
            state_name, description = "error", event.reason
        if new.status:
            actions.append(SetStatus(state_name, _short(description), url))
        if new.checks:
            actions.append(UpdateCheck("completed", _short(description), _summary(new), "failure"))
    else:
        if new.status:
            actions.append(SetStatus("error", _short(f"cancelled: {event.reason}"), url))
        if new.checks:
            actions.append(UpdateCheck("completed", "cancelled", _summary(new), "cancelled"))
    return actions


def _going(state: ReportState, title: str) -> UpdateCheck:
    """The check run of a run that goes on: its stage table, and the buttons it offers now."""
    return UpdateCheck("in_progress", title, _summary(state), None, buttons(waiting(state)))


def _instance_statuses(state: ReportState, event: RunEvent, url: str | None) -> list[Action]:
    """The commit statuses of the matrix instances ``event`` changes (``ReportState.instances``)."""
    if not state.status or not state.instances:
        return []
    if isinstance(event, StagesSkipped):
        changed = [(n, "error", f"skipped: {event.reason}") for n in event.stages if n in state.instances]
    elif isinstance(event, StageStarted) and event.stage in state.instances:
        changed = [(event.stage, "pending", f"running (attempt {event.attempt})")]
    elif isinstance(event, StageSucceeded) and event.stage in state.instances:
        changed = [(event.stage, "success", "passed")]
    elif isinstance(event, StageFailed) and event.stage in state.instances and not event.retrying:
        changed = [(event.stage, "failure", f"{event.error_type}: {event.message}")]
    else:
        changed = []
    return [
        SetStatus(cast(StatusState, to), _short(text), url, f"{state.context}/{name}")
        for name, to, text in changed
    ]


def comment_marker(run_id: str, stage: str) -> str:
    """The hidden marker a comment of this run's stage carries (HTML comments do not render on GitHub)."""
    return f"{MARKER}run={run_id} stage={stage} -->"


def carries_marker(body: str | None) -> bool:
    return bool(body) and _MARKER.search(body or "") is not None


def is_own_comment(event: EventInfo) -> bool:
    """True for a comment event whose comment Hamster wrote: it must not start runs."""
    if event.name not in COMMENT_EVENTS:
        return False
    comment = event.payload.get("comment")
    body = comment.get("body") if isinstance(comment, dict) else None
    return carries_marker(event.comment) or carries_marker(body if isinstance(body, str) else None)


# Deployments. GitHub's deployment status states: error, failure, inactive, in_progress, queued, pending,
# success (https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status).
_DEPLOYMENT_STATE: dict[StatusState, DeploymentState] = {
    "pending": "queued",
    "success": "success",
    "failure": "failure",
    "error": "error",
}
_OWN_DEPLOYMENT_STATUS = re.compile(r"\(hamster run [0-9a-f]{8}\)\Z")
ENVIRONMENT_URL = "environment_url"  # the output key a deployment's task names its environment's URL with
_SHOWS_ENVIRONMENT: frozenset[DeploymentState] = frozenset({"in_progress", "success"})


def environment_url_of(output: object) -> str | None:
    """The environment URL a stage returned: its output dict's ``environment_url``, if an http(s) URL."""
    value = output.get(ENVIRONMENT_URL) if isinstance(output, dict) else None
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None


def deployment_of(event: RunRequested) -> int | None:
    """The deployment a run reports to: the one whose ``deployment`` event started it, if one did."""
    return event.event.deployment_id if event.event.name == "deployment" else None


def deployment_description(text: str, run_id: str) -> str:
    """``text`` with the mark of Hamster's own deployment statuses, within GitHub's 140 characters."""
    mark = f" (hamster run {run_id[:8]})"
    return _short(text, DESCRIPTION_MAX - len(mark)) + mark


def for_deployment(
    state: ReportState, event: RunEvent, actions: list[Action], url: str | None
) -> list[Action]:
    """A deployment's run: its commit statuses become statuses of the deployment, and each stage that
    starts makes it ``in_progress``. Any other run's actions stay as they are."""
    if state.deployment_id is None:
        return actions
    out: list[Action] = [
        _deployment_status(state, _DEPLOYMENT_STATE[a.state], a.description, a.target_url)
        if isinstance(a, SetStatus)
        else a
        for a in actions
        if not (isinstance(a, SetStatus) and a.context is not None)  # a deployment has one status line
    ]
    if isinstance(event, StageStarted) and state.status:
        out.insert(0, _deployment_status(state, "in_progress", f"running {event.stage}", url))
    return out


def _deployment_status(
    state: ReportState, to: DeploymentState, description: str, log_url: str | None
) -> SetDeploymentStatus:
    shown = state.environment_url if to in _SHOWS_ENVIRONMENT else None
    return SetDeploymentStatus(to, deployment_description(description, state.run_id), log_url, shown)


def is_own_deployment_status(event: EventInfo) -> bool:
    """True for a deployment_status event about a status Hamster posted: it must not start runs."""
    if event.name != "deployment_status":
        return False
    status = event.payload.get("deployment_status")
    description = status.get("description") if isinstance(status, dict) else None
    return isinstance(description, str) and _OWN_DEPLOYMENT_STATUS.search(description) is not None


def expired(state: ReportState, now: float, keep_s: float) -> bool:
    """Whether a run's report state can be forgotten: the run ended ``keep_s`` seconds ago or more. Its
    records are then committed long since; one read again after that reports nothing (no state)."""
    return state.ended_at is not None and now - state.ended_at >= keep_s
