"""The audit trail: a hash chain over each run's records, its verification, and a run's records explained.

Theory of operation
-------------------
Every record of ``<namespace>.run-events`` carries ``prev_hash`` (the ``hash`` of the run's record before it,
``""`` for ``RunRequested``) and ``hash``::

    hash = sha256(prev_hash + "\\n" + canonical JSON of the record without prev_hash and hash)

Canonical JSON is sorted keys, no spaces, UTF-8. Verification works on the JSON as stored, not on the
model, so a field added to a record type later does not change the hash of records written before it.

``verify`` walks the log in offset order and recomputes each record's hash from the hash *stored* on the
run's record of the previous sequence number. Altering a record's content breaks that record; recomputing
its hash to hide it breaks the next one. A record written twice (a worker died between writing it and
updating its table) is not a break: both copies chain to the same predecessor. Pure: no I/O.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from hamster.errors import InvalidTransition
from hamster.runs.events import RunEvent
from hamster.runs.lifecycle import RunState, evolve
from hamster.subscribers.changes import SubscriberChange, SubscriberState, apply_change

_CHAIN_FIELDS = frozenset({"prev_hash", "hash"})
R = TypeVar("R", bound=BaseModel)


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any, length: int = 12) -> str:
    """A short sha256 of ``value``'s canonical JSON: enough to tell two inputs or outputs apart."""
    return hashlib.sha256(canonical(value)).hexdigest()[:length]


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """The hash of one record whose JSON is ``content`` (its chain fields are ignored) after ``prev_hash``."""
    body = {key: value for key, value in content.items() if key not in _CHAIN_FIELDS}
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(body)).hexdigest()


def seal(record: R, prev_hash: str) -> R:
    """``record`` with its place in the chain: ``prev_hash`` and the hash over both."""
    content = record.model_dump(mode="json")
    return record.model_copy(update={"prev_hash": prev_hash, "hash": chain_hash(prev_hash, content)})


def seal_next(state: RunState | None, record: R) -> tuple[R, RunState]:
    """``record`` as the run log takes it after ``state`` (None: ``record`` is a run's ``RunRequested``):
    sealed onto the run's chain, with the run's state after it. Raises ``InvalidTransition``, before
    anything is written, when the state machine refuses it. Every chained run-log record is made here: the
    workers' recorder and the CLI's rerun differ only in how they write it."""
    sealed = seal(record, state.last_hash if state is not None else "")
    return sealed, evolve(state, cast(RunEvent, sealed))


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Break:
    """A record whose stored hash is not what its content and its predecessor give."""

    run_id: str
    seq: int
    position: Position
    expected: str
    found: str
    reason: str


@dataclass(frozen=True)
class Verification:
    records: int
    runs: int
    unsealed: int  # records written before the chain existed (no hash): counted, not judged
    breaks: tuple[Break, ...]
    leases: int = 0  # lease renewals: not steps of a run, outside the chain

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify(records: Iterable[tuple[Position, dict[str, Any]]]) -> Verification:
    """Recompute every run's chain over ``records`` (JSON objects as stored, in offset order per run).

    A run whose first record seen is not its first (``--since`` cut into it) starts from that record's own
    ``prev_hash``: the link before the window cannot be checked, everything after it is. Two workers may
    append a record of the same ``seq`` (claims of one stage: the log's order decides, the later one is
    refused); both chain to the same predecessor, and the next record may follow either. Lease renewals
    are not steps of the run and stay out of the chain: counted, not judged.
    """
    check = ChainCheck()
    for position, content in records:
        check.add(position, content)
    return check.result()


class ChainCheck:
    """``verify`` one record at a time, for a caller that streams the log (``add``, then ``result``)."""

    def __init__(self) -> None:
        self._stored: dict[tuple[str, int], list[str]] = {}  # (run, seq) → hashes stored on such records
        self._runs: set[str] = set()
        self._chained: set[str] = set()  # runs with a stored hash
        self._breaks: list[Break] = []
        self._count = self._unsealed = self._leases = 0

    def add(self, position: Position, content: dict[str, Any]) -> None:
        stored = self._stored
        self._count += 1
        run_id, seq = str(content.get("run_id", "")), int(content.get("seq", 0))
        self._runs.add(run_id)
        if content.get("type") == "LeaseRenewed":
            self._leases += 1
            return
        found = str(content.get("hash", ""))
        if not found:
            self._unsealed += 1
            return
        claimed = str(content.get("prev_hash", ""))
        if seq == 1:
            prev = ""
        elif (run_id, seq - 1) in stored:
            before = stored[(run_id, seq - 1)]
            prev = claimed if claimed in before else before[0]
        elif run_id not in self._chained:
            prev = claimed  # the window starts inside this run
        else:
            self._breaks.append(Break(run_id, seq, position, "", found, f"no record {seq - 1} before it"))
            stored.setdefault((run_id, seq), []).append(found)
            self._chained.add(run_id)
            return
        expected = chain_hash(prev, content)
        if expected != found:
            self._breaks.append(
                Break(run_id, seq, position, expected, found, "content does not match its hash")
            )
        elif claimed != prev:
            self._breaks.append(Break(run_id, seq, position, prev, claimed, "prev_hash is not the chain's"))
        stored.setdefault((run_id, seq), []).append(found)
        self._chained.add(run_id)

    def result(self) -> Verification:
        return Verification(self._count, len(self._runs), self._unsealed, tuple(self._breaks), self._leases)


@dataclass(frozen=True)
class AuditRow:
    """One record of a run, as ``hamster runs show --audit`` prints it."""

    position: Position
    at: datetime
    type: str
    seq: int
    stage: str | None
    attempt: int | None
    worker: str
    duration_ms: float | None
    subscriber: str
    subscriber_version: str
    delivery_id: str
    input_digest: str | None  # StageStarted: the event, params and earlier outputs the stage was given
    output_digest: str | None
    error_digest: str | None
    hash: str


def audit_rows(records: Iterable[tuple[Position, RunEvent]]) -> list[AuditRow]:
    """Explain one run's records in log order, folding the run as it goes to know each stage's input."""
    rows: list[AuditRow] = []
    state: RunState | None = None
    for position, record in records:
        before = state
        # A duplicate does not fold, but is still listed: the audit shows the log as it is.
        with contextlib.suppress(InvalidTransition):
            state = evolve(state, record)
        requested = state or before
        fields = record.model_dump()
        input_digest = output_digest = error_digest = None
        if record.type == "StageStarted" and before is not None:
            input_digest = digest(
                {
                    "delivery_id": before.event.delivery_id,
                    "sha": before.event.sha,
                    "params": before.params,
                    "outputs": before.outputs_for(record.index),  # what the task saw: its ancestors'
                    # (a line's ancestors are all the stages before it)
                }
            )
        if record.type == "StageSucceeded":
            output_digest = digest(fields.get("output"))
        if record.type == "StageFailed":
            error_digest = digest([fields["error_type"], fields["message"], fields["traceback"]])
        rows.append(
            AuditRow(
                position=position,
                at=record.occurred_at,
                type=record.type,
                seq=record.seq,
                stage=fields.get("stage"),
                attempt=fields.get("attempt"),
                worker=record.worker,
                duration_ms=fields.get("duration_ms"),
                subscriber=requested.subscriber if requested else "",
                subscriber_version=requested.subscriber_version if requested else "",
                delivery_id=requested.event.delivery_id if requested else "",
                input_digest=input_digest,
                output_digest=output_digest,
                error_digest=error_digest,
                hash=record.hash,
            )
        )
    return rows


@dataclass(frozen=True)
class HistoryEntry:
    """A change that changed the subscribers table: when, by whom, and which fields."""

    at: datetime
    name: str
    change: str
    by: str
    version: str
    enabled: bool
    changed_fields: tuple[str, ...]  # spec fields that differ from the previous version ("" for new)


def subscriber_history(changes: Iterable[SubscriberChange], name: str | None = None) -> list[HistoryEntry]:
    """Fold the subscriber changes as the table does, keeping each one that changed something."""
    table: dict[str, SubscriberState] = {}
    entries: list[HistoryEntry] = []
    for change in changes:
        current = table.get(change.name)
        new = apply_change(current, change)
        if new is None:
            continue
        table[change.name] = new
        if name is not None and change.name != name:
            continue
        if current is None:
            fields: tuple[str, ...] = ("(new)",)
        elif current.spec != new.spec:
            old, now = current.spec.model_dump(), new.spec.model_dump()
            fields = tuple(k for k in now if k != "version" and now[k] != old.get(k))
        else:
            fields = ("enabled",)
        entries.append(
            HistoryEntry(
                at=change.at,
                name=change.name,
                change=change.type,
                by=change.by,
                version=new.spec.version,
                enabled=new.enabled,
                changed_fields=fields,
            )
        )
    return entries
