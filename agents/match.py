"""Agent: match each webhook on the events topic against the subscribers table and start runs.

The "join" is a table lookup inside the agent (Faust's Join classes are not implemented). A delivery id
already seen is a redelivery and starts nothing. For each enabled matching subscriber the agent records
``RunRequested`` (deterministic run id from delivery id and subscriber) and hands the run to its first
stage, or, when the subscriber limits its concurrency, files it with the lanes agent, which starts it when
it may. The delivery is marked seen only after both writes were acknowledged: a crash in between means the
webhook is processed again, and the deterministic run id makes the second try land on the same run. A
webhook a worker before this one may have matched (uncommitted when this worker began reading its
partition) is checked against the run log, so a run's ``RunRequested`` is never written twice.

Each ``RunRequested`` says whether the run is trusted (``hamster.github.forks``): a fork's pull request is
not, unless its subscriber trusts forks or the run comes from an ``/ok-to-test`` comment of a person with
write permission, which this agent turns into a ``pull_request`` event of the pull request's head.

A write that fails (Kafka away) is tried again for a while; if it still fails, the webhook goes to the
dead letters (from where ``hamster dlq replay`` sends it back) and is not marked seen: a webhook is never
acknowledged with its runs half-started. A run requested but never admitted is offered again by the
reaper (``agents.stages``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from pydantic import ValidationError

from agents.plumbing import RunEnded, RunRecorder, set_aside_event, subscriber_states
from hamster import ids, logs
from hamster.github.client import client_for
from hamster.github.forks import decide, is_ok_to_test, may_vouch, ok_to_test_event
from hamster.github.forks import refusal as ok_refusal
from hamster.github.reporting import is_own_comment, is_own_deployment_status
from hamster.intake.envelope import EventEnvelope, decode_envelope, encode_envelope
from hamster.intake.github_events import EventInfo, event_info
from hamster.pipelines.graph import admission_index
from hamster.runs.approvals import Verb, command_of, may_decide, refusal, waiting
from hamster.runs.audit import seal
from hamster.runs.events import DecideStage, RunFailed, RunRequested, RunStage
from hamster.runs.merge_groups import (
    GroupRun,
    GroupRuns,
    destroyed_reason,
    group_key,
    is_destroyed,
    is_stale,
    on_destroyed,
    remember,
)
from hamster.runs.replay import replay_reports
from hamster.subscribers.concurrency import Policy, lane_of
from hamster.subscribers.dispatch import params_of
from hamster.subscribers.lane_commands import FileRun, lanes_key
from hamster.subscribers.matching import SubscriberIndex
from hamster.subscribers.spec import SubscriberSpec
from streams.app import Streams, send_acked
from streams.reader import end_offset, patiently, requests_since
from streams.topics import events_topic, run_events_topic

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
CLOCK_MARGIN_MS = 5 * 60 * 1000
OWN_SUBSCRIBERS_WAIT_S = 30.0
START_TRIES = 5  # writes of one webhook's runs, 1 + 2 + 4 + 8 s apart, before it goes to the dead letters


async def decide_from_comment(streams: Streams, recorder: RunRecorder, info: EventInfo, verb: Verb) -> None:
    """An ``/approve`` or ``/deny`` comment: from a person with write permission, a ``DecideStage`` for each
    approval stage waiting in the pull request's runs; from anyone else, a reply saying why not."""
    found = waiting(recorder.view.in_flight(), info.repo, info.pr_number)
    if not found or info.repo is None or info.pr_number is None or info.sender is None:
        return
    github = client_for(streams.settings).for_event(info)
    if not github.configured:
        log.warning(
            "%s on %s#%s: GitHub is not configured, so nobody's permission can be checked",
            verb,
            info.repo,
            info.pr_number,
        )
        return
    permission = await github.call(github.permission, info.repo, info.sender)
    if not may_decide(permission):
        log.warning(
            "%s on %s#%s by %s refused: permission %s",
            verb,
            info.repo,
            info.pr_number,
            info.sender,
            permission,
        )
        body = refusal(info.sender, info.repo, verb, permission)
        await github.call(github.comment, info.repo, info.pr_number, body)
        return
    for run_id, stage in found:
        command = DecideStage(
            run_id=run_id, stage=stage, approve=verb == "approve", by=info.sender, via="comment"
        )
        await send_acked(streams.run_control, run_id, command.model_dump_json().encode())
        log.info("run %s: %s of %s by %s sent", run_id, verb, stage, info.sender)


async def vouch_from_comment(streams: Streams, info: EventInfo) -> None:
    """An ``/ok-to-test`` comment (hamster.github.forks): from a person with write permission, the pull
    request's head as GitHub gives it now goes to the events topic as a ``pull_request`` event naming who
    vouched, and its runs are trusted; from anyone else, a reply saying why nothing started."""
    if info.repo is None or info.pr_number is None or info.sender is None:
        return
    github = client_for(streams.settings).for_event(info)
    if not github.configured:
        log.warning(
            "/ok-to-test on %s#%s: GitHub is not configured, so nobody's permission can be checked",
            info.repo,
            info.pr_number,
        )
        return
    permission = await github.call(github.permission, info.repo, info.sender)
    if not may_vouch(permission):
        log.warning(
            "/ok-to-test on %s#%s by %s refused: permission %s",
            info.repo,
            info.pr_number,
            info.sender,
            permission,
        )
        await github.call(
            github.comment, info.repo, info.pr_number, ok_refusal(info.sender, info.repo, permission)
        )
        return
    pull = await github.call(github.pull_request_json, info.repo, info.pr_number)
    envelope = ok_to_test_event(info, pull)
    await send_acked(streams.events, envelope.key, encode_envelope(envelope))
    log.info(
        "/ok-to-test on %s#%s by %s: its head %s starts trusted (delivery %s)",
        info.repo,
        info.pr_number,
        info.sender,
        envelope.payload["hamster"]["ok_to_test"]["sha"],
        envelope.delivery_id,
    )


def register(streams: Streams, recorder: RunRecorder) -> None:
    app = streams.app
    window_s = streams.settings.redelivery_window_days * 86400
    last_prune: dict[int, float] = {}
    ready: list[bool] = []  # set once this worker's own subscribers were seen in the table
    index_of: dict[str, Any] = {}  # "items": the subscribers table's raw items the "index" was built from
    taken: dict[int, tuple[int, int]] = {}  # events partition → (generation, its end when first read in it)
    earlier: dict[int, dict[str, tuple[int, RunRequested]]] = {}  # … → the runs requested before then

    def subscriber_index() -> SubscriberIndex:
        # Parsing and filing every subscriber for each event would make matching cost grow with their
        # number; the table changes rarely, so the index is rebuilt only when its raw contents changed.
        items = list(streams.subscribers.items())
        if index_of.get("items") != items:
            enabled = [s.spec for s in subscriber_states(streams).values() if s.enabled]
            index_of.update(items=items, index=SubscriberIndex(enabled))
        index: SubscriberIndex = index_of["index"]
        return index

    async def own_subscribers_published() -> None:
        # On a first start the table is empty until this worker's subscribers arrive through it, and a
        # webhook matched before then would start nothing. Wait for them, but only so long: a rebalance
        # waits for this event to finish, and the table's updates pause during one.
        if ready:
            return
        names = {s.name for s in streams.catalog.subscribers}
        deadline = time.monotonic() + OWN_SUBSCRIBERS_WAIT_S
        while not names <= set(subscriber_states(streams)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        missing = names - set(subscriber_states(streams))
        if missing:
            log.warning(
                "matching without subscriber(s) %s: not in the table after %.0f s",
                ", ".join(sorted(missing)),
                OWN_SUBSCRIBERS_WAIT_S,
            )
        ready.append(True)

    def prune(partition: int) -> None:
        # Deletes go to the changelog partition of the record being processed, so only keys that live in
        # that partition may be deleted here; the first-seen record remembers its partition for this.
        now = time.time()
        if now - last_prune.get(partition, 0.0) < PRUNE_EVERY_S:
            return
        last_prune[partition] = now
        for key, raw in list(streams.deliveries.items()):
            seen = json.loads(raw)
            if seen["partition"] == partition and now - seen["at"] > window_s:
                del streams.deliveries[key]
        prune_merge_groups(partition, now)

    async def earlier_requests(message: Any) -> dict[str, tuple[int, RunRequested]]:
        """The runs already requested in the run log, for a webhook a worker before this one may have
        matched: one that was in the partition when this worker began reading it, uncommitted. (That worker
        may have died after writing a run's RunRequested, before the webhook counted as seen.)"""
        partition = message.partition
        generation = app.consumer_generation_id
        if taken.get(partition, (None, 0))[0] != generation:
            kafka = streams.settings.kafka
            # Runs are requested after their webhook was stored; the margin allows for clocks apart.
            since_ms = int((message.timestamp or 0) * 1000) - CLOCK_MARGIN_MS
            events, run_log = events_topic(streams.settings), run_events_topic(streams.settings)
            end = await patiently(end_offset, kafka, events, partition, what=events)
            found = await patiently(requests_since, kafka, run_log, since_ms, what=run_log)
            taken[partition] = (generation, end)
            earlier[partition] = found
        return earlier[partition] if message.offset < taken[partition][1] else {}

    async def start_run(
        envelope: EventEnvelope,
        spec: SubscriberSpec,
        info: Any,
        position: tuple[int, int],
        report: bool,
        before: dict[str, tuple[int, RunRequested]],
    ) -> RunStage | None:
        """Start the run; its first stage request, or None when it failed at once."""
        run_id = ids.run_id(envelope.delivery_id, spec.name)
        replay_of = envelope.replay_of
        policy = Policy(spec.concurrency, spec.max_parallel)
        lane = lane_of(info) if policy.governed else None
        requested = RunRequested(
            event_id=ids.event_id(run_id, 1),
            run_id=run_id,
            seq=1,
            subscriber=spec.name,
            subscriber_version=spec.version,
            pipeline=spec.pipeline,
            graph=spec.graph,
            params={**spec.params, **params_of(info)},
            event=info.model_copy(update={"payload": {}}),
            events_offset=position,
            # A replayed webhook has a delivery id of its own; its runs link to the original delivery's.
            replay=replay_of is not None,
            replay_of=replay_of,
            original_run_id=ids.run_id(replay_of, spec.name) if replay_of else None,
            report=replay_of is None or report,
            lane=lane,
            trust=decide(info, trust_forks=spec.trust_forks),
        )
        requested = seal(requested, "")
        if run_id in before:
            # Requested already: go on from the record in the log (its hash chains the run's next record).
            requested_offset, requested = before[run_id]
            log.warning(
                "run %s: already requested (run log offset %d); not written again", run_id, requested_offset
            )
        else:
            found = await recorder.request(requested)
            if found is None:
                log.info("run %s: already requested and ended; nothing to start", run_id)
                return None
            requested_offset, requested = found
        index = admission_index(requested.pipeline, requested.graph)
        request = RunStage(
            run_id=run_id,
            index=index,
            attempt=1,
            requested=requested,
            event=info,
            requested_offset=requested_offset,
        )
        first = request.stage
        if first not in streams.stages:
            state = recorder.view.state(run_id)
            if state is not None:
                reason = f"task {first} is not registered on this worker (subscriber version skew?)"
                with contextlib.suppress(RunEnded):
                    await recorder.record(state, RunFailed, stage=first, reason=reason)
                log.error("run %s: %s", run_id, reason)
            return None
        if lane is None:
            await send_acked(streams.stages[first], run_id, request.model_dump_json().encode())
        else:
            # The lanes agent decides when it starts and whether it supersedes runs in flight.
            filed = FileRun(
                subscriber=spec.name,
                repo=lanes_key(info),
                run_id=run_id,
                lane=lane,
                concurrency=policy.concurrency,
                max_parallel=policy.max_parallel,
                request=request.model_dump_json(),
            )
            await send_acked(streams.lanes, filed.repo, filed.model_dump_json().encode())
        log.info("run %s: requested (subscriber %s, delivery %s)", run_id, spec.name, envelope.delivery_id)
        return request

    # Merge queues (hamster.runs.merge_groups): the runs a merge group starts are remembered, and cancelled
    # when GitHub destroys the group unmerged. Table writes go to the changelog partition of the record being
    # processed: a group's key lives in the events partition of its repository.
    def remember_merge_group_runs(info: EventInfo, started: list[RunStage | None], partition: int) -> None:
        key = group_key(info)
        if key is None or is_destroyed(info):
            return
        raw = streams.merge_groups.get(key.encode())
        book = GroupRuns.model_validate_json(raw) if raw else None
        for request in started:
            if request is not None:
                run = GroupRun(
                    run_id=request.run_id,
                    requested=request.requested,
                    requested_offset=request.requested_offset,
                )
                book = remember(book, run, partition, time.time())
        if book is not None and book.model_dump_json().encode() != raw:
            streams.merge_groups[key.encode()] = book.model_dump_json().encode()

    async def cancel_destroyed_merge_group(info: EventInfo) -> None:
        key = group_key(info)
        if key is None or not is_destroyed(info):
            return
        raw = streams.merge_groups.get(key.encode())
        reason = destroyed_reason(info)
        book = GroupRuns.model_validate_json(raw) if raw else None
        for cancel in on_destroyed(book, reason):
            await send_acked(streams.run_control, cancel.run_id, cancel.model_dump_json().encode())
            log.info("run %s: cancelled, merge group %s destroyed (%s)", cancel.run_id, key, reason)
        if raw is not None:
            del streams.merge_groups[key.encode()]

    def prune_merge_groups(partition: int, now: float) -> None:
        # Called by ``prune``; like it, deletes only the keys of the partition being processed.
        for key, raw in list(streams.merge_groups.items()):
            book = GroupRuns.model_validate_json(raw)
            if book.partition == partition and is_stale(book, now):
                del streams.merge_groups[key]

    @app.agent(streams.events, name="hamster.match", concurrency=1)
    async def match(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            try:
                envelope = decode_envelope(event.value)
            except (ValidationError, ValueError) as exc:
                await set_aside_event(streams, "match", exc, event)
                continue
            logs.bind(delivery_id=envelope.delivery_id)
            await own_subscribers_published()
            key = envelope.delivery_id.encode()
            # A replay carries a new delivery id (its original is ``replay_of``), so it passes this filter
            # once, and a redelivered replay is filtered like any other redelivery.
            if streams.deliveries.get(key) is not None:
                log.info("delivery %s: redelivery, ignored", envelope.delivery_id)
                continue
            info = event_info(envelope.event, envelope.delivery_id, envelope.payload)
            predicates = {s.name: s.when for s in streams.catalog.subscribers if s.when is not None}
            # A comment Hamster wrote never starts a run, or a comment task could trigger itself; nor does
            # a deployment status it posted.
            own = is_own_comment(info) or is_own_deployment_status(info)
            verb = None if own else command_of(info)
            if verb is not None:
                try:
                    await decide_from_comment(streams, recorder, info, verb)
                except Exception:  # GitHub did not answer: the person can comment again
                    log.exception("delivery %s: %s not carried out", envelope.delivery_id, verb)
            if not own and is_ok_to_test(info):
                try:
                    await vouch_from_comment(streams, info)
                except Exception:  # GitHub did not answer: the person can comment again
                    log.exception("delivery %s: /ok-to-test not carried out", envelope.delivery_id)
            matched = [] if own else subscriber_index().match(info, predicates)
            before = await earlier_requests(message) if matched else {}
            report = replay_reports(message.headers)
            position = (message.partition, message.offset)
            started = await _tries(_start_all, start_run, envelope, matched, info, position, report, before)
            if started is None:
                await set_aside_event(streams, "match", RuntimeError("its runs could not be started"), event)
                continue
            remember_merge_group_runs(info, started, message.partition)
            await cancel_destroyed_merge_group(info)
            if not matched:
                log.info("delivery %s (%s): no subscriber matched", envelope.delivery_id, envelope.event)
            streams.deliveries[key] = json.dumps({"at": time.time(), "partition": message.partition}).encode()
            prune(message.partition)


async def _start_all(start_run: Any, envelope: Any, matched: Any, info: Any, *args: Any) -> list[Any]:
    return [await start_run(envelope, spec, info, *args) for spec in matched]


async def _tries(start: Any, *args: Any) -> Any:
    """``await start(*args)`` until it succeeds (its result), START_TRIES times at most (else None). Run ids
    are deterministic, so trying again lands on the same runs."""
    for attempt in range(START_TRIES):
        try:
            return await start(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("starting runs failed (try %d of %d): %s", attempt + 1, START_TRIES, exc)
            if attempt + 1 < START_TRIES:
                await asyncio.sleep(2**attempt)
    return None
