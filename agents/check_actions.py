"""Agent: do what people ask on Hamster's check runs: "Re-run" starts a rerun, "Cancel" cancels the run.

It reads the events topic beside the match agent, looks only at ``check_run`` and ``check_suite`` webhooks
(by their Kafka header, before decoding), and lets ``hamster.check_actions.decide`` say what they ask. A
rerun is ``streams.rerun.rerun_run`` (blocking Kafka reads and writes: in a thread); a cancellation is a
``CancelRun`` on the run-control topic, which the run-control agent carries out. Replayed webhooks
(``hamster replay``) ask nothing: replaying history must not rerun or cancel anything today.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from hamster import logs
from hamster.check_actions import (
    CHECK_EVENTS,
    CancelFromGitHub,
    Decision,
    RerunRun,
    RerunSuite,
    decide,
    suite_reruns,
)
from hamster.envelope import EVENT_HEADER, decode_envelope
from hamster.errors import HamsterError
from hamster.github import client_for
from hamster.run_events import CancelRun
from streams.app import Streams, send_acked
from streams.rerun import rerun_run

log = logging.getLogger(__name__)


def _event_name(headers: Any) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        if name == EVENT_HEADER:
            return bytes(value).decode(errors="replace")
    return None


async def _rerun(streams: Streams, run_id: str, from_failed_stage: bool, by: str | None) -> None:
    new = await asyncio.to_thread(
        rerun_run,
        streams.settings,
        run_id,
        None,
        True,  # a rerun asked for on GitHub reports back there
        from_failed_stage=from_failed_stage,
        requested_by=by,
    )
    log.info(
        "run %s: rerun as %s from stage %s, asked by @%s on GitHub",
        run_id,
        new.run_id,
        new.pipeline[new.start_index],
        by,
    )


async def carry_out(streams: Streams, decision: Decision) -> None:
    if isinstance(decision, CancelFromGitHub):
        command = CancelRun(run_id=decision.run_id, reason=decision.reason)
        await send_acked(streams.run_control, decision.run_id, command.model_dump_json().encode())
        log.info("run %s: %s", decision.run_id, decision.reason)
    elif isinstance(decision, RerunRun):
        await _rerun(streams, decision.run_id, decision.from_failed_stage, decision.by)
    elif isinstance(decision, RerunSuite):
        github = client_for(streams.settings).for_installation(decision.installation_id)
        checks = await github.call(github.check_runs, decision.repo, decision.head_sha)
        for run_id in suite_reruns(checks, streams.settings.github_app_id):
            await _rerun(streams, run_id, False, decision.by)


def register(streams: Streams) -> None:
    app_id = streams.settings.github_app_id
    if app_id is None:
        return  # check runs need a GitHub App: without one, Hamster has no check run to act on

    @streams.app.agent(streams.events, name="hamster.check_actions", concurrency=1)
    async def check_actions(stream: Any) -> None:
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
                await carry_out(streams, decision)
            except HamsterError as exc:
                log.warning("%s from GitHub not carried out: %s", type(decision).__name__, exc)
            except Exception:
                # An exception escaping the agent would acknowledge the record and restart the actor
                # without retrying it (faust-streaming): say so loudly and read on.
                log.exception("%s from GitHub failed", type(decision).__name__)
