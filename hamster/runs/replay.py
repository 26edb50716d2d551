"""Replays, decided without I/O: which recorded webhooks a filter selects, what a replayed webhook and a
rerun look like, and what a subscribers change would have started ("dry run").

A replayed webhook is a copy of the recorded envelope with a delivery id of its own (the *replay id*) and
``replay_of`` naming the original delivery: it passes the match agent's redelivery filter once, and its runs
link to the original delivery's runs. A rerun (``hamster replay run``) is a new ``RunRequested`` carrying the
original run's recorded configuration, numbered as the original's next attempt; from stage k it reuses the
outputs the original run's log holds for the stages before k.

Replays write nothing to GitHub unless asked: ``RunRequested.report`` is False for them, and the reporter
skips such runs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from hamster import ids
from hamster.errors import ConfigurationError
from hamster.intake.envelope import DELIVERY_HEADER, EVENT_HEADER, EventEnvelope
from hamster.intake.github_events import EventInfo, event_info
from hamster.runs.events import RunRequested
from hamster.runs.lifecycle import RunState
from hamster.subscribers.dispatch import MANUAL_EVENT, SCHEDULE_EVENT
from hamster.subscribers.matching import SubscriberIndex, glob_match
from hamster.subscribers.spec import SubscriberSpec

REPORT_HEADER = "X-Hamster-Replay-Report"
"""Kafka header on a replayed envelope: ``1`` when its runs may report to GitHub (``--report``)."""

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or a time ago such as ``90m``, ``2h``, ``7d``, ``1w``."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"{text!r} is neither an ISO time nor a time ago like 2h or 7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


@dataclass(frozen=True)
class EventFilter:
    """What ``hamster replay events`` selects. Empty fields select everything; repos are globs."""

    since: datetime | None = None
    until: datetime | None = None
    repos: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    deliveries: tuple[str, ...] = ()

    def selects(self, envelope: EventEnvelope) -> bool:
        if self.deliveries and envelope.delivery_id not in self.deliveries:
            return False
        # Replays are copies of recorded webhooks: replaying them again only when named by delivery id.
        if envelope.replay_of is not None and not self.deliveries:
            return False
        if self.since is not None and envelope.received_at < self.since:
            return False
        if self.until is not None and envelope.received_at >= self.until:
            return False
        if self.repos and (envelope.repository is None or not glob_match(envelope.repository, self.repos)):
            return False
        if self.events and envelope.event not in self.events:
            return False
        return not self.actions or envelope.action in self.actions

    def rejects_record(self, headers: Any, key: bytes | None, timestamp_ms: int | None) -> bool:
        """True when a record of the events topic certainly is not selected, judged from its Kafka headers,
        key and timestamp alone (so it need not be decoded). False means "decode it and ask ``selects``".

        The intake writes GitHub's event and delivery headers and the key (the repository when the payload
        names one); a replay carries ``REPORT_HEADER``; a record is stamped after its ``received_at`` was
        set, so a timestamp before ``since`` means ``received_at`` is before it too.
        """
        found = dict(headers.items() if isinstance(headers, Mapping) else (headers or ()))
        event, delivery = found.get(EVENT_HEADER), found.get(DELIVERY_HEADER)
        if self.events and event is not None and bytes(event).decode(errors="replace") not in self.events:
            return True
        if self.deliveries:
            if (
                delivery is not None
                and bytes(delivery).decode(errors="replace").lower() not in self.deliveries
            ):
                return True
        elif REPORT_HEADER in found:
            return True  # a replay, not named by delivery id
        if (
            self.since is not None
            and timestamp_ms is not None
            and timestamp_ms < self.since.timestamp() * 1000
        ):
            return True
        # The key is the repository whenever the payload names one; otherwise the repository is None and
        # a repos filter selects nothing, whatever the key.
        return bool(
            self.repos and key is not None and not glob_match(key.decode(errors="replace"), self.repos)
        )


def nothing_to_match(
    selection: EventFilter,
    specs: Iterable[SubscriberSpec],
    started: Mapping[str, set[str]],
    headers: Any,
) -> bool:
    """True when a dry run may count a record of the events topic as a selected event with no rows without
    decoding it: the filter is decided by headers alone (event names, delivery ids), no subscriber listens
    to the record's event, and its delivery started nothing. Events Hamster makes itself (manual runs,
    schedule ticks) name their subscriber whatever its filters, so they are always decoded.
    Call it only for records ``rejects_record`` let through.
    """
    if selection.since or selection.until or selection.repos or selection.actions:
        return False
    found = dict(headers.items() if isinstance(headers, Mapping) else (headers or ()))
    event, delivery = found.get(EVENT_HEADER), found.get(DELIVERY_HEADER)
    if event is None or delivery is None:
        return False
    name = bytes(event).decode(errors="replace")
    if name in (MANUAL_EVENT, SCHEDULE_EVENT):
        return False
    if any("*" in spec.events or name in spec.events for spec in specs):
        return False
    return bytes(delivery).decode(errors="replace") not in started


def select_events(envelopes: Iterable[EventEnvelope], selection: EventFilter) -> Iterator[EventEnvelope]:
    """The envelopes the filter selects, each delivery once (GitHub redeliveries share the delivery id).

    A generator: it holds the delivery ids seen, never the envelopes.
    """
    seen: set[str] = set()
    for envelope in envelopes:
        if envelope.delivery_id in seen or not selection.selects(envelope):
            continue
        seen.add(envelope.delivery_id)
        yield envelope


def replayed(original: EventEnvelope, now: datetime, replay_id: str | None = None) -> EventEnvelope:
    """The envelope to append for a replay: a new delivery id, linked to the first original delivery."""
    return original.model_copy(
        update={
            "delivery_id": replay_id or str(uuid.uuid4()),
            "replay_of": original.replay_of or original.delivery_id,
            "received_at": now,
        }
    )


def replay_headers(report: bool) -> list[tuple[str, bytes]]:
    return [(REPORT_HEADER, b"1" if report else b"0")]


def replay_reports(headers: Any) -> bool:
    """True when a replayed envelope's Kafka headers allow reporting to GitHub (default: they do not)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return any(name == REPORT_HEADER and bytes(value) == b"1" for name, value in items)


Predicates = Mapping[str, Callable[[EventInfo], bool]]


def would_start(envelope: EventEnvelope, index: SubscriberIndex, predicates: Predicates) -> list[str]:
    """The subscribers the match agent would start for ``envelope`` (names, sorted)."""
    info = event_info(envelope.event, envelope.delivery_id, envelope.payload)
    return [spec.name for spec in index.match(info, predicates)]


Verdict = Literal["new", "gone", "same"]


@dataclass(frozen=True)
class DryRunRow:
    delivery_id: str
    received_at: datetime
    event: str
    action: str | None
    repo: str | None
    subscriber: str
    verdict: Verdict  # new: would start, did not; gone: did start, would not; same: both


@dataclass(frozen=True)
class DryRun:
    events: int
    rows: tuple[DryRunRow, ...] = field(default=())

    def of(self, verdict: Verdict) -> list[DryRunRow]:
        return [row for row in self.rows if row.verdict == verdict]


def dry_run(
    envelopes: Iterable[EventEnvelope],
    specs: Iterable[SubscriberSpec],
    predicates: Predicates,
    started: Mapping[str, set[str]],
) -> DryRun:
    """Match ``envelopes`` against ``specs`` and compare with ``started`` (delivery id → subscribers).

    ``envelopes`` is consumed once, one at a time: a stream read from the topic is never held whole.
    """
    index = SubscriberIndex(specs)
    rows = []
    events = 0
    for envelope in envelopes:
        events += 1
        would = set(would_start(envelope, index, predicates))
        did = started.get(envelope.delivery_id, set())
        for name in sorted(would | did):
            verdict: Verdict = "same" if name in would and name in did else "new" if name in would else "gone"
            rows.append(
                DryRunRow(
                    envelope.delivery_id,
                    envelope.received_at,
                    envelope.event,
                    envelope.action,
                    envelope.repository,
                    name,
                    verdict,
                )
            )
    return DryRun(events=events, rows=tuple(rows))


def started_by_delivery(requests: Iterable[RunRequested]) -> dict[str, set[str]]:
    """Which subscribers each delivery started, from the run log (reruns of a run are not starts)."""
    out: dict[str, set[str]] = {}
    for requested in requests:
        if requested.original_run_id is None or requested.replay_of is not None:
            out.setdefault(requested.event.delivery_id, set()).add(requested.subscriber)
    return out


def start_in(content: Mapping[str, Any]) -> tuple[str, str] | None:
    """(delivery id, subscriber) when a run-log record's JSON is a ``RunRequested`` that is a start (not a
    rerun): ``started_by_delivery`` for one record read as JSON, without building the model."""
    if content.get("type") != "RunRequested":
        return None
    if content.get("original_run_id") is not None and content.get("replay_of") is None:
        return None
    event = content.get("event")
    delivery = event.get("delivery_id") if isinstance(event, Mapping) else None
    subscriber = content.get("subscriber")
    return (delivery, subscriber) if isinstance(delivery, str) and isinstance(subscriber, str) else None


def retention_warning(
    since: datetime | None, earliest: datetime | None, trimmed: bool, retention_days: int
) -> str | None:
    """A clear sentence when the range asked for starts before the oldest record the topic still holds.

    ``trimmed``: the topic's log start is past offset 0, so records were deleted by retention.
    """
    if since is None or not trimmed or earliest is None or since >= earliest:
        return None
    return (
        f"the range starts at {since.isoformat(timespec='seconds')}, but the topic only holds records from "
        f"{earliest.isoformat(timespec='seconds')} on (retention: {retention_days} days, "
        "HAMSTER_RETENTION_DAYS); older webhooks are gone and cannot be replayed"
    )


def stage_index(pipeline: Sequence[str], stage: str | None) -> int:
    """The index of ``stage`` (a name, or a 1-based number) in ``pipeline``; 0 when not given."""
    if stage is None:
        return 0
    if stage in pipeline:
        return pipeline.index(stage)
    if stage.isdigit() and 1 <= int(stage) <= len(pipeline):
        return int(stage) - 1
    raise ConfigurationError(f"no stage {stage!r} in the pipeline {' → '.join(pipeline)}")


def rerun(
    original: RunRequested,
    state: RunState,
    start_index: int,
    attempts: Iterable[int],
    report: bool = False,
    delivery_id: str | None = None,
) -> RunRequested:
    """The ``RunRequested`` of a rerun of ``original`` (now in ``state``) from stage ``start_index``.

    ``attempts``: the attempt numbers of every run already linked to the same first run; the rerun is the
    next one. Its run id is derived from that first run and the attempt, so repeating the command after a
    crash lands on the same run. ``delivery_id``: the GitHub webhook that asked for the rerun (Re-run on a
    check run or suite); the id is then derived from the first run and that delivery instead, so the same
    webhook delivered again lands on the same run, even once the first rerun is in the log (which moves
    the attempt number on) and even when it asks to rerun that rerun (a suite's newest check run).
    """
    first_run = original.original_run_id or original.run_id
    attempt = max([original.attempt, *attempts]) + 1
    reused = {}
    for stage in state.stages[:start_index]:
        if stage.status != "succeeded":
            raise ConfigurationError(
                f"stage {stage.name} did not succeed in run {original.run_id} ({stage.status}): "
                "replay from it or from an earlier stage"
            )
        reused[stage.name] = stage.output
    asked = f"{first_run}#{attempt}" if delivery_id is None else f"{first_run}#delivery/{delivery_id}"
    run_id = ids.run_id(original.event.delivery_id, original.subscriber, replay_id=asked)
    return RunRequested(
        event_id=ids.event_id(run_id, 1),
        run_id=run_id,
        seq=1,
        subscriber=original.subscriber,
        subscriber_version=original.subscriber_version,
        pipeline=original.pipeline,
        graph=original.graph,
        params=original.params,
        event=original.event,
        events_offset=original.events_offset,
        replay=True,
        replay_of=None,
        original_run_id=first_run,
        attempt=attempt,
        report=report,
        start_index=start_index,
        reused_outputs=reused,
        trust=original.trust,  # a rerun of a fork's untrusted run stays untrusted
    )
