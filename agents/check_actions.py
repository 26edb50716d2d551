"""Agent: do what people ask on Hamster's check runs: "Re-run" starts a rerun, "Cancel" cancels the run,
"Approve" and "Deny" decide the approval stages that wait.

It reads the events topic beside the match agent, looks only at ``check_run`` and ``check_suite`` webhooks
(by their Kafka header, before decoding), and lets ``hamster.github.check_actions.decide`` say what they ask.
A rerun is ``streams.rerun.rerun_run`` (blocking Kafka reads and writes: in a thread), named after the
webhook's delivery id so a redelivered webhook lands on the same rerun; a cancellation is a ``CancelRun``
on the run-control topic, which the run-control agent carries out. An approval is checked as an
``/approve`` comment is: the stages that wait are read from this worker's view of the runs in flight, the
clicker's permission from GitHub; a person with write permission gets a ``DecideStage`` per stage (``via``
``check_run``), anyone else a reply on the pull request (when the run has one) and nothing decided.
Replayed webhooks (``hamster replay``) ask nothing: replaying history must not rerun or cancel anything
today.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agents.plumbing import RunView
from hamster import logs
from hamster.errors import HamsterError
from hamster.github.check_actions import (
    CHECK_EVENTS,
    CancelFromGitHub,
    DecideFromGitHub,
    Decision,
    RerunRun,
    RerunSuite,
    decide,
    suite_reruns,
)
from hamster.github.client import client_for
from hamster.intake.envelope import EVENT_HEADER, decode_envelope
from hamster.runs.approvals import may_decide, refusal, waiting_in
from hamster.runs.events import CancelRun, DecideStage
from streams.app import RawStream, Streams, send_acked
from streams.reader import partition_for
from streams.rerun import rerun_run

log = logging.getLogger(__name__)


def _event_name(headers: Any) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == EVENT_HEADER:
            return bytes(value).decode(errors="replace")
    return None


async def _rerun(
    streams: Streams, run_id: str, from_failed_stage: bool, by: str | None, delivery_id: str
) -> None:
    new = await asyncio.to_thread(
        rerun_run,
        streams.settings,
        run_id,
        None,
        True,  # a rerun asked for on GitHub reports back there
        from_failed_stage=from_failed_stage,
        requested_by=by,
        delivery_id=delivery_id,
    )
    log.info(
        "run %s: rerun as %s from stage %s, asked by @%s on GitHub (delivery %s)",
        run_id,
        new.run_id,
        new.pipeline[new.start_index],
        by,
        delivery_id,
    )


async def _decide(streams: Streams, view: RunView, decision: DecideFromGitHub) -> None:
    run_id = decision.run_id
    partition = partition_for(run_id, streams.settings.partitions)
    await view.wait_for_run(run_id, partition, None, timeout=10.0)  # a worker that just started
    state = view.state(run_id)
    stages = waiting_in(state)
    if state is None or not stages:
        log.info("run %s: %s by %s from GitHub: no stage waits", run_id, decision.verb, decision.by)
        return
    github = client_for(streams.settings).for_installation(decision.installation_id)
    permission = await github.call(github.permission, decision.repo, decision.by)
    if not may_decide(permission):
        log.warning(
            "run %s: %s by %s from GitHub refused: permission %s",
            run_id,
            decision.verb,
            decision.by,
            permission,
        )
        if state.event.pr_number is not None:
            body = refusal(decision.by, decision.repo, decision.verb, permission)
            await github.call(github.comment, decision.repo, state.event.pr_number, body)
        return
    for stage in stages:
        command = DecideStage(
            run_id=run_id, stage=stage, approve=decision.approve, by=decision.by, via="check_run"
        )
        await send_acked(streams.run_control, run_id, command.model_dump_json().encode())
        log.info("run %s: %s of %s by %s from GitHub sent", run_id, decision.verb, stage, decision.by)


async def carry_out(streams: Streams, view: RunView, decision: Decision, delivery_id: str) -> None:
    if isinstance(decision, CancelFromGitHub):
        command = CancelRun(run_id=decision.run_id, reason=decision.reason)
        await send_acked(streams.run_control, decision.run_id, command.model_dump_json().encode())
        log.info("run %s: %s", decision.run_id, decision.reason)
    elif isinstance(decision, DecideFromGitHub):
        await _decide(streams, view, decision)
    elif isinstance(decision, RerunRun):
        await _rerun(streams, decision.run_id, decision.from_failed_stage, decision.by, delivery_id)
    elif isinstance(decision, RerunSuite):
        github = client_for(streams.settings).for_installation(decision.installation_id)
        checks = await github.call(github.check_runs, decision.repo, decision.head_sha)
        for run_id in suite_reruns(checks, streams.settings.github_app_id):
            await _rerun(streams, run_id, False, decision.by, delivery_id)


def register(streams: Streams, view: RunView) -> None:
    app_id = streams.settings.github_app_id
    if app_id is None:
        return  # check runs need a GitHub App: without one, Hamster has no check run to act on

    @streams.app.agent(streams.events, name="hamster.check_actions", concurrency=1)
    async def check_actions(stream: RawStream) -> None:
        async for event in stream.events():
            if _event_name(event.message.headers) not in CHECK_EVENTS:
                continue
            try:
                envelope = decode_envelope(event.value)
            except (ValidationError, ValueError):
                continue  # the match agent sets it aside
            if envelope.replay_of is not None:
                continue
            decision = decide(envelope.event, envelope.payload, app_id)
            if decision is None:
                continue
            logs.bind(delivery_id=envelope.delivery_id, run_id=getattr(decision, "run_id", None))
            try:
                await carry_out(streams, view, decision, envelope.delivery_id)
            except HamsterError as exc:
                log.warning("%s from GitHub not carried out: %s", type(decision).__name__, exc)
            except Exception:
                # An exception escaping the agent would acknowledge the record and restart the actor
                # without retrying it (faust-streaming): say so loudly and read on.
                log.exception("%s from GitHub failed", type(decision).__name__)
