"""Agent: tell GitHub how runs went (commit statuses, check runs) and clean up finished runs' workspaces.

It reads the run log (key: run id) and keeps what it reported in the ``reported`` table, co-partitioned
with the log. ``hamster.github.reporting.report`` decides; this agent makes the calls, then stores the new
state. The table is written only after GitHub accepted the calls: after a crash the same records are processed
again and the state's ``seq`` makes them no-ops (see the theory of operation in ``hamster.github.reporting``).
A call GitHub keeps failing (after the session's rate-limit waits) is logged and the record passed over:
reporting must not stop the run log from being read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agents.plumbing import decoded, subscriber_states
from hamster.execution.artifacts import ArtifactStore
from hamster.execution.test_reports import check_annotations, check_summary, in_batches
from hamster.github.client import GitHubClient, client_for
from hamster.github.reporting import (
    SUMMARY_MAX,
    Action,
    RemoveWorkspace,
    ReportOptions,
    ReportState,
    SetDeploymentStatus,
    SetStatus,
    StartCheck,
    UpdateCheck,
    expired,
    options_for,
    report,
)
from hamster.runs.events import RunEvent, RunRequested, decode_run_event
from hamster.subscribers.spec import SubscriberSpec
from hamster.tasks.workspace import remove_workspace
from streams.app import RawStream, Streams
from streams.reader import partition_for

log = logging.getLogger(__name__)


def _options(streams: Streams, name: str) -> ReportOptions | None:
    sub = streams.catalog.get(name)
    spec: SubscriberSpec | None = sub.spec if sub is not None else None
    if spec is None:
        state = subscriber_states(streams).get(name)
        spec = state.spec if state is not None else None
    if spec is None:
        return None
    return options_for(spec.name, spec.report, spec.status_context, spec.checks)


async def _carry_out(
    github: GitHubClient, streams: Streams, state: ReportState | None, action: Action
) -> ReportState | None:
    if isinstance(action, RemoveWorkspace):
        if await asyncio.to_thread(remove_workspace, streams.settings.home, action.run_id):
            log.info("run %s: workspace removed", action.run_id)
        return state
    assert state is not None and state.repo is not None and state.sha is not None
    repo, sha = state.repo, state.sha
    github = github.for_installation(state.installation_id)  # with an app: the webhook's installation
    if isinstance(action, SetStatus):
        await github.call(
            github.create_status,
            repo,
            sha,
            action.state,
            action.context or state.context,
            action.description,
            action.target_url,
        )
    elif isinstance(action, StartCheck):
        state = state.model_copy(
            update={"check_run_id": await _start_check(github, repo, sha, state, action)}
        )
    elif isinstance(action, SetDeploymentStatus) and state.deployment_id is not None:
        await github.call(
            github.create_deployment_status,
            repo,
            state.deployment_id,
            action.state,
            action.description,
            action.log_url,
            action.environment_url,
        )
    elif isinstance(action, UpdateCheck) and state.check_run_id is not None:
        await _update_check(github, streams, repo, state.check_run_id, state, action)
    return state


async def _start_check(
    github: GitHubClient, repo: str, sha: str, state: ReportState, action: StartCheck
) -> Any:
    """The id of the run's check run: the one already there (a record read again), else a new one."""
    found = await github.call(github.find_check_run, repo, sha, state.context, action.external_id)
    if found is None:
        found = await github.call(
            github.create_check_run,
            repo,
            sha,
            state.context,
            external_id=action.external_id,
            details_url=action.details_url,
            status="queued",
            output={"title": action.title, "summary": action.summary},
            actions=[button.as_github() for button in action.actions],
        )
    return found


async def _update_check(
    github: GitHubClient,
    streams: Streams,
    repo: str,
    check_run_id: int,
    state: ReportState,
    action: UpdateCheck,
) -> None:
    output: dict[str, Any] = {"title": action.title, "summary": action.summary}
    batches: list[list[dict[str, Any]]] = []
    if action.status == "completed":
        # Test reports live beside the artifacts (a failed stage has no output to carry one).
        store = ArtifactStore.for_settings(streams.settings)
        reports = await asyncio.to_thread(store.reports, state.run_id)
        if reports:
            output["summary"] = f"{action.summary}\n\n{check_summary(reports)}"[:SUMMARY_MAX]
            batches = in_batches(check_annotations(reports))
    await github.call(
        github.update_check_run,
        repo,
        check_run_id,
        status=action.status,
        conclusion=action.conclusion,
        output={**output, "annotations": batches[0]} if batches else output,
        actions=[button.as_github() for button in action.actions],
    )
    for batch in batches[1:]:  # GitHub appends each request's annotations to the earlier ones
        await github.call(
            github.update_check_run,
            repo,
            check_run_id,
            output={**output, "annotations": batch},
        )


async def report_one(streams: Streams, github: GitHubClient, record: RunEvent) -> None:
    key = record.run_id.encode()
    raw = streams.reported.get(key)
    before = ReportState.model_validate_json(raw) if raw else None
    options = None
    if isinstance(record, RunRequested):
        options = _options(streams, record.subscriber)
        if options is not None and options.any and not github.configured:
            log.warning(
                "run %s: subscriber %s reports, but neither HAMSTER_GITHUB_API_TOKEN nor an app is set",
                record.run_id,
                record.subscriber,
            )
            options = None
        elif options is not None and options.checks and not streams.settings.github_app:
            log.warning(
                "run %s: subscriber %s asks for check runs, which GitHub lets GitHub Apps write only "
                "(HAMSTER_GITHUB_APP_ID); with a personal token they are refused",
                record.run_id,
                record.subscriber,
            )
    # Runs that must not write to GitHub (replays, unless asked) say so on their RunRequested.
    quiet = isinstance(record, RunRequested) and getattr(record, "report", True) is False
    state, actions = report(before, record, options, streams.settings.public_url, replay=quiet)
    for action in actions:
        try:
            state = await _carry_out(github, streams, state, action)
        except Exception:
            # Rate limits were waited out already: what fails here would fail again. The run's later
            # records still report (a final status supersedes a missing pending one).
            log.exception("run %s: %s for %s failed", record.run_id, type(action).__name__, record.type)
    if state is not None and state != before:
        streams.reported[key] = state.model_dump_json().encode()
    elif state is None and before is not None:
        del streams.reported[key]


REPORTED_KEPT_S = 3600.0  # how long an ended run's report state is kept, for records read again
PRUNE_EVERY_S = 600.0


def prune(streams: Streams, partition: int, now: float) -> None:
    """Forget the report states of runs that ended long ago, so the table holds the runs in flight and the
    last hour's. Deletes go to the changelog partition of the record being processed, so only the runs of
    that partition are pruned here."""
    count = streams.settings.partitions
    for key, raw in list(streams.reported.items()):
        if partition_for(key.decode(), count) != partition:
            continue
        if expired(ReportState.model_validate_json(raw), now, REPORTED_KEPT_S):
            del streams.reported[key]


def register(streams: Streams) -> None:
    github = client_for(streams.settings)
    last_prune: dict[int, float] = {}

    @streams.app.agent(streams.run_events, name="hamster.reporting", concurrency=1)
    async def report_runs(stream: RawStream) -> None:
        async for event, record in decoded(streams, "reporting", stream, decode_run_event):
            try:
                await report_one(streams, github, record)
            except Exception:
                # An exception escaping the agent would acknowledge the record and restart the actor
                # without retrying it (faust-streaming); say so loudly and read on.
                log.exception("run %s: could not report %s to GitHub", record.run_id, record.type)
            partition, now = event.message.partition, time.time()
            if now - last_prune.get(partition, 0.0) >= PRUNE_EVERY_S:
                last_prune[partition] = now
                prune(streams, partition, now)
