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

The agent decodes each webhook (``agents.plumbing.decoded``), asks ``hamster.runs.starting`` what it asks
and how each matching subscriber's run is requested and admitted, and carries that out (``Matcher``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agents.plumbing import RunEnded, RunRecorder, decoded, set_aside_event, subscriber_states
from hamster import logs
from hamster.github.client import client_for
from hamster.github.forks import may_vouch, ok_to_test_event
from hamster.github.forks import refusal as ok_refusal
from hamster.intake.envelope import EventEnvelope, decode_envelope, encode_envelope
from hamster.intake.github_events import EventInfo, event_info
from hamster.runs.approvals import Verb, may_decide, refusal, waiting
from hamster.runs.events import DecideStage, RunFailed, RunRequested, RunStage, stage_request
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
from hamster.runs.starting import Asks, admission, run_requested, webhook_asks
from hamster.subscribers.lane_commands import FileRun
from hamster.subscribers.matching import SubscriberIndex
from hamster.subscribers.spec import SubscriberSpec
from streams.app import RawStream, Streams, send_acked
from streams.reader import end_offset, patiently, requests_since
from streams.topics import events_topic, run_events_topic

log = logging.getLogger(__name__)

T = TypeVar("T")
Earlier = dict[str, tuple[int, RunRequested]]  # run id → (run-log offset, its RunRequested)

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
    matcher = Matcher(streams, recorder)

    @streams.app.agent(streams.events, name="hamster.match", concurrency=1)
    async def match(stream: RawStream) -> None:
        async for event, envelope in decoded(streams, "match", stream, decode_envelope):
            await matcher.handle(event, envelope)


class Matcher:
    """The match agent on this worker: what it remembers between webhooks, and the steps it carries out
    for each one (``handle``)."""

    def __init__(self, streams: Streams, recorder: RunRecorder) -> None:
        self.streams = streams
        self.recorder = recorder
        self.window_s = streams.settings.redelivery_window_days * 86400
        self.predicates = {s.name: s.when for s in streams.catalog.subscribers if s.when is not None}
        self.own_subscribers_seen = False
        self.last_prune: dict[int, float] = {}
        self._index_items: list[Any] | None = None  # the subscribers table's raw items ``_index`` is of
        self._index = SubscriberIndex([])
        # Events partition → (consumer generation, the partition's end when first read in it), and the runs
        # requested before then.
        self.taken: dict[int, tuple[int, int]] = {}
        self.earlier: dict[int, Earlier] = {}

    async def handle(self, event: Any, envelope: EventEnvelope) -> None:
        """Start the runs of one webhook and answer what it asks; mark it seen once that is done."""
        message = event.message
        logs.bind(delivery_id=envelope.delivery_id)
        await self.own_subscribers_published()
        key = envelope.delivery_id.encode()
        # A replay carries a new delivery id (its original is ``replay_of``), so it passes this filter
        # once, and a redelivered replay is filtered like any other redelivery.
        if self.streams.deliveries.get(key) is not None:
            log.info("delivery %s: redelivery, ignored", envelope.delivery_id)
            return
        info = event_info(envelope.event, envelope.delivery_id, envelope.payload)
        asks = webhook_asks(info)
        await self.answer(asks, info)
        matched = self.subscriber_index().match(info, self.predicates) if asks.may_start else []
        position, report = (message.partition, message.offset), replay_reports(message.headers)
        runs = [(spec, run_requested(envelope, spec, info, position, report)) for spec in matched]
        before = await self.earlier_requests(message) if runs else {}
        started = await _tries(lambda: self.start_all(runs, info, before))
        if started is None:
            await set_aside_event(self.streams, "match", RuntimeError("its runs could not be started"), event)
            return
        self.remember_merge_group_runs(info, started, message.partition)
        await self.cancel_destroyed_merge_group(info)
        if not matched:
            log.info("delivery %s (%s): no subscriber matched", envelope.delivery_id, envelope.event)
        seen = {"at": time.time(), "partition": message.partition}
        self.streams.deliveries[key] = json.dumps(seen).encode()
        self.prune(message.partition)

    async def answer(self, asks: Asks, info: EventInfo) -> None:
        """Carry out an ``/approve``, ``/deny`` or ``/ok-to-test`` comment."""
        if asks.verb is not None:
            try:
                await decide_from_comment(self.streams, self.recorder, info, asks.verb)
            except Exception:  # GitHub did not answer: the person can comment again
                log.exception("delivery %s: %s not carried out", info.delivery_id, asks.verb)
        if asks.ok_to_test:
            try:
                await vouch_from_comment(self.streams, info)
            except Exception:  # GitHub did not answer: the person can comment again
                log.exception("delivery %s: /ok-to-test not carried out", info.delivery_id)

    def subscriber_index(self) -> SubscriberIndex:
        # Parsing and filing every subscriber for each event would make matching cost grow with their
        # number; the table changes rarely, so the index is rebuilt only when its raw contents changed.
        items = list(self.streams.subscribers.items())
        if self._index_items != items:
            enabled = [s.spec for s in subscriber_states(self.streams).values() if s.enabled]
            self._index_items, self._index = items, SubscriberIndex(enabled)
        return self._index

    async def own_subscribers_published(self) -> None:
        # On a first start the table is empty until this worker's subscribers arrive through it, and a
        # webhook matched before then would start nothing. Wait for them, but only so long: a rebalance
        # waits for this event to finish, and the table's updates pause during one.
        if self.own_subscribers_seen:
            return
        names = {s.name for s in self.streams.catalog.subscribers}
        deadline = time.monotonic() + OWN_SUBSCRIBERS_WAIT_S
        while not names <= set(subscriber_states(self.streams)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        missing = names - set(subscriber_states(self.streams))
        if missing:
            log.warning(
                "matching without subscriber(s) %s: not in the table after %.0f s",
                ", ".join(sorted(missing)),
                OWN_SUBSCRIBERS_WAIT_S,
            )
        self.own_subscribers_seen = True

    async def earlier_requests(self, message: Any) -> Earlier:
        """The runs already requested in the run log, for a webhook a worker before this one may have
        matched: one that was in the partition when this worker began reading it, uncommitted. (That worker
        may have died after writing a run's RunRequested, before the webhook counted as seen.)"""
        partition = message.partition
        generation = self.streams.app.consumer_generation_id
        if self.taken.get(partition, (None, 0))[0] != generation:
            settings = self.streams.settings
            # Runs are requested after their webhook was stored; the margin allows for clocks apart.
            since_ms = int((message.timestamp or 0) * 1000) - CLOCK_MARGIN_MS
            events, run_log = events_topic(settings), run_events_topic(settings)
            end = await patiently(end_offset, settings.kafka, events, partition, what=events)
            found = await patiently(requests_since, settings.kafka, run_log, since_ms, what=run_log)
            self.taken[partition] = (generation, end)
            self.earlier[partition] = found
        return self.earlier[partition] if message.offset < self.taken[partition][1] else {}

    async def start_all(
        self, runs: list[tuple[SubscriberSpec, RunRequested]], info: EventInfo, before: Earlier
    ) -> list[RunStage | None]:
        return [await self.start(spec, requested, info, before) for spec, requested in runs]

    async def start(
        self, spec: SubscriberSpec, requested: RunRequested, info: EventInfo, before: Earlier
    ) -> RunStage | None:
        """Record the run's ``RunRequested`` (unless the log has it) and admit it to the workers; its first
        stage request, or None when it had ended already or failed at once."""
        run_id = requested.run_id
        if run_id in before:
            # Requested already: go on from the record in the log (its hash chains the run's next record).
            offset, in_log = before[run_id]
            log.warning("run %s: already requested (run log offset %d); not written again", run_id, offset)
        else:
            found = await self.recorder.request(requested)
            if found is None:
                log.info("run %s: already requested and ended; nothing to start", run_id)
                return None
            offset, in_log = found
        request = stage_request(in_log, info, offset)
        if request.stage not in self.streams.stages:
            await self.fail_unregistered(request)
            return None
        admitted = admission(spec, request, requested.lane)
        if isinstance(admitted, FileRun):
            await send_acked(self.streams.lanes, admitted.repo, admitted.model_dump_json().encode())
        else:
            await send_acked(self.streams.stages[request.stage], run_id, admitted.model_dump_json().encode())
        log.info("run %s: requested (subscriber %s, delivery %s)", run_id, spec.name, info.delivery_id)
        return request

    async def fail_unregistered(self, request: RunStage) -> None:
        state = self.recorder.view.state(request.run_id)
        if state is not None:
            reason = f"task {request.stage} is not registered on this worker (subscriber version skew?)"
            with contextlib.suppress(RunEnded):
                await self.recorder.record(state, RunFailed, stage=request.stage, reason=reason)
            log.error("run %s: %s", request.run_id, reason)

    # Merge queues (hamster.runs.merge_groups): the runs a merge group starts are remembered, and cancelled
    # when GitHub destroys the group unmerged. Table writes go to the changelog partition of the record being
    # processed: a group's key lives in the events partition of its repository.
    def remember_merge_group_runs(
        self, info: EventInfo, started: list[RunStage | None], partition: int
    ) -> None:
        key = group_key(info)
        if key is None or is_destroyed(info):
            return
        raw = self.streams.merge_groups.get(key.encode())
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
            self.streams.merge_groups[key.encode()] = book.model_dump_json().encode()

    async def cancel_destroyed_merge_group(self, info: EventInfo) -> None:
        key = group_key(info)
        if key is None or not is_destroyed(info):
            return
        raw = self.streams.merge_groups.get(key.encode())
        reason = destroyed_reason(info)
        book = GroupRuns.model_validate_json(raw) if raw else None
        for cancel in on_destroyed(book, reason):
            await send_acked(self.streams.run_control, cancel.run_id, cancel.model_dump_json().encode())
            log.info("run %s: cancelled, merge group %s destroyed (%s)", cancel.run_id, key, reason)
        if raw is not None:
            del self.streams.merge_groups[key.encode()]

    def prune(self, partition: int) -> None:
        # Deletes go to the changelog partition of the record being processed, so only keys that live in
        # that partition may be deleted here; the first-seen record remembers its partition for this.
        now = time.time()
        if now - self.last_prune.get(partition, 0.0) < PRUNE_EVERY_S:
            return
        self.last_prune[partition] = now
        for key, raw in list(self.streams.deliveries.items()):
            seen = json.loads(raw)
            if seen["partition"] == partition and now - seen["at"] > self.window_s:
                del self.streams.deliveries[key]
        for key, raw in list(self.streams.merge_groups.items()):
            book = GroupRuns.model_validate_json(raw)
            if book.partition == partition and is_stale(book, now):
                del self.streams.merge_groups[key]


async def _tries(start: Callable[[], Awaitable[T]]) -> T | None:
    """``await start()`` until it succeeds (its result), START_TRIES times at most (else None). Run ids
    are deterministic, so trying again lands on the same runs."""
    for attempt in range(START_TRIES):
        try:
            return await start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("starting runs failed (try %d of %d): %s", attempt + 1, START_TRIES, exc)
            if attempt + 1 < START_TRIES:
                await asyncio.sleep(2**attempt)
    return None
