"""Signed checkpoints of the run log, and what they reveal: re-sealed forgeries, reordering, a cut-off tail.

Theory of operation
-------------------
The per-run hash chain (``hamster.runs.audit``) shows a record changed in place, but anyone who can write to
the run log can recompute it: a forged record re-sealed with its successors verifies. And a log whose newest
records are gone verifies too: nothing says they ever existed. Checkpoints close both holes with a key the
writer of the run log does not need: ``HAMSTER_AUDIT_KEY``.

Per partition of ``<ns>.run-events``, a worker folds every record, in offset order, into

    chain = sha256(chain + "\\n" + sha256(key) + sha256(value))      (ordered: any change, reorder, gap)
    mix   = (mix + sha256(key + "\\n" + value)) mod 2**256           (order-free: which records there are)
    count = count + 1

starting from ``chain = ""``, ``mix = 0``, ``count = 0`` at the offset the partition's chain began
(``since``). Every ``HAMSTER_AUDIT_CHECKPOINT_RECORDS`` records, and every
``HAMSTER_AUDIT_CHECKPOINT_INTERVAL_S`` seconds when there is anything new, it writes a ``Checkpoint``
(partition, the last offset folded, chain, mix, count, time) signed with HMAC-SHA256 under the key to
``<ns>.audit-checkpoints``. Every value is a function of the log alone, so two workers checkpointing the
same partition (a rebalance) write checkpoints that agree.

``verify_partition`` folds the log again and compares at every checkpoint: a different ``chain`` with the
same ``count`` and ``mix`` means the same records in another order; with the same ``count`` and another
``mix``, records were changed (a forged record, re-sealed or not); another ``count``, records were removed
or inserted. A log that ends before a checkpoint's offset, or holds fewer records than it counted, was
cut off. Checkpoints whose signature does not verify are reported and not used. After a finding the fold
continues from the checkpoint's signed values, so each range is judged on its own.

Limits, said plainly: records after the newest checkpoint are covered by nothing yet (up to an interval's
worth); an attacker who can delete the newest checkpoints as well as the newest records moves the
"cut-off" point back to the newest checkpoint that is left; without the key nothing here can be checked.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

_MOD = 2**256


class Fold(BaseModel):
    """Where the fold of one partition stands: after ``offset``, ``count`` records since ``since``."""

    model_config = ConfigDict(frozen=True)

    partition: int
    since: int  # the offset the chain began at (its "genesis")
    offset: int  # the last offset folded in; since - 1 before any
    count: int = 0
    chain: str = ""
    mix: str = "0" * 64


class Checkpoint(Fold):
    """A ``Fold`` at a moment, signed: one record of ``<ns>.audit-checkpoints``, keyed by partition."""

    at: datetime
    signature: str = ""

    def body(self) -> bytes:
        """The canonical bytes the signature covers: every field but the signature."""
        fields = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def genesis(partition: int, since: int) -> Fold:
    return Fold(partition=partition, since=since, offset=since - 1)


def fold(state: Fold, offset: int, key: bytes | None, value: bytes | None) -> Fold:
    """``state`` with the record at ``offset`` folded in."""
    key, value = key or b"", value or b""
    link = hashlib.sha256(key).digest() + hashlib.sha256(value).digest()
    chain = hashlib.sha256(state.chain.encode() + b"\n" + link).hexdigest()
    item = int.from_bytes(hashlib.sha256(key + b"\n" + value).digest(), "big")
    mix = f"{(int(state.mix, 16) + item) % _MOD:064x}"
    return state.model_copy(update={"offset": offset, "count": state.count + 1, "chain": chain, "mix": mix})


def resume(checkpoint: Checkpoint) -> Fold:
    """The fold as it stood at ``checkpoint``: where the next one continues from."""
    return Fold(**checkpoint.model_dump(include=set(Fold.model_fields)))


def sign(state: Fold, at: datetime, key: bytes) -> Checkpoint:
    unsigned = Checkpoint(**state.model_dump(), at=at)
    return unsigned.model_copy(update={"signature": _mac(unsigned, key)})


def signed_by(checkpoint: Checkpoint, key: bytes) -> bool:
    return hmac.compare_digest(checkpoint.signature, _mac(checkpoint, key))


def _mac(checkpoint: Checkpoint, key: bytes) -> str:
    return hmac.new(key, checkpoint.body(), hashlib.sha256).hexdigest()


def decode_checkpoint(value: bytes) -> Checkpoint | None:
    """The checkpoint in a record of the checkpoints topic; None for anything else."""
    try:
        return Checkpoint.model_validate_json(value)
    except (ValidationError, ValueError):
        return None


# -- writing -------------------------------------------------------------------------------------------------


def advance(
    state: Fold, records: Iterable[tuple[int, bytes | None, bytes | None]], every: int
) -> tuple[Fold, list[Fold]]:
    """Fold ``records`` (offset, key, value; offsets after ``state.offset``, in order) into ``state``.

    Returns the new state and the states to checkpoint: one after each ``every`` records, and the last one
    when it is not among them (so the tail of a quiet partition is checkpointed too).
    """
    due: list[Fold] = []
    folded = 0
    for offset, key, value in records:
        if offset <= state.offset:
            continue
        state = fold(state, offset, key, value)
        folded += 1
        if folded % every == 0:
            due.append(state)
    if folded and (not due or due[-1] != state):
        due.append(state)
    return state, due


# -- verifying -----------------------------------------------------------------------------------------------

Kind = Literal["reordered", "changed", "removed-or-inserted", "cut-off", "bad-signature"]


@dataclass(frozen=True)
class Finding:
    """Something a checkpoint shows was done to the log."""

    kind: Kind
    partition: int
    first: int  # the range of offsets the checkpoint covers, first and last
    last: int
    checkpoint_at: datetime
    message: str


@dataclass(frozen=True)
class PartitionReport:
    partition: int
    checkpoints: int  # signed ones used
    checked: int  # records inside a checkpointed range that were folded and compared
    uncovered: int  # records after the newest checkpoint (or before the oldest usable one)
    findings: tuple[Finding, ...]


def verify_partition(
    partition: int,
    log_start: int,
    records: Sequence[tuple[int, bytes | None, bytes | None]],
    checkpoints: Iterable[Checkpoint],
    key: bytes,
) -> PartitionReport:
    """Fold ``records`` (the partition from ``log_start`` on, in offset order) and compare at each checkpoint.

    The fold starts where the chain began if the log still reaches back there; otherwise (retention
    deleted the start) from the oldest checkpoint at or after the log's start.
    """
    findings: list[Finding] = []
    usable: list[Checkpoint] = []
    for cp in checkpoints:
        if cp.partition != partition:
            continue
        if signed_by(cp, key):
            usable.append(cp)
        else:
            findings.append(
                Finding(
                    "bad-signature",
                    partition,
                    cp.since,
                    cp.offset,
                    cp.at,
                    f"checkpoint of offset {cp.offset} ({cp.at.isoformat()}) is not signed with "
                    "HAMSTER_AUDIT_KEY: forged, or signed with another key; not used",
                )
            )
    usable.sort(key=lambda c: (c.offset, c.at))
    if not usable:
        return PartitionReport(partition, 0, 0, len(records), tuple(findings))
    first = usable[0]
    state: Fold
    if log_start <= first.since:
        state = genesis(partition, first.since)
    else:
        seeds = [c for c in usable if c.since == first.since and c.offset >= log_start - 1]
        if not seeds:
            return PartitionReport(partition, 0, 0, len(records), tuple(findings))
        seed = seeds[0]
        state = resume(seed)
        usable = [c for c in usable if c.offset > seed.offset]
    remaining = [r for r in records if r[0] > state.offset]
    checked = 0
    index = 0
    for cp in usable:
        begin = state.offset + 1
        while index < len(remaining) and remaining[index][0] <= cp.offset:
            state = fold(state, *remaining[index])
            index += 1
            checked += 1
        ends_before = index >= len(remaining) and (not records or records[-1][0] < cp.offset)
        if ends_before and state.count < cp.count:
            last = records[-1][0] if records else log_start - 1
            findings.append(
                Finding(
                    "cut-off",
                    partition,
                    begin,
                    cp.offset,
                    cp.at,
                    f"the log ends at offset {last}, but the checkpoint of {cp.at.isoformat()} covers up to "
                    f"offset {cp.offset}: {cp.count - state.count} record(s) cut off",
                )
            )
            # Every later checkpoint is past the end too: one finding says it, from the newest one.
            later = usable[-1]
            if later is not cp:
                findings[-1] = Finding(
                    "cut-off",
                    partition,
                    begin,
                    later.offset,
                    later.at,
                    f"the log ends at offset {last}, but the checkpoint of {later.at.isoformat()} covers up "
                    f"to offset {later.offset}: {later.count - state.count} record(s) cut off",
                )
            return PartitionReport(partition, len(usable), checked, 0, tuple(findings))
        if (state.chain, state.count) != (cp.chain, cp.count):
            findings.append(_mismatch(partition, begin, cp, state))
        state = resume(cp)  # judge the next range on its own
    return PartitionReport(partition, len(usable), checked, len(remaining) - index, tuple(findings))


def _mismatch(partition: int, begin: int, cp: Checkpoint, found: Fold) -> Finding:
    where = f"offsets {begin} to {cp.offset} (checkpoint of {cp.at.isoformat()})"
    if found.count != cp.count:
        delta = found.count - cp.count
        kind: Kind = "removed-or-inserted"
        more = "more" if delta > 0 else "fewer"
        what = f"{abs(delta)} record(s) {more} than checkpointed: inserted or removed"
    elif found.mix == cp.mix:
        kind, what = "reordered", "the same records in another order: reordered"
    else:
        kind, what = (
            "changed",
            "records differ from those checkpointed: forged (re-sealed or not) or replaced",
        )
    return Finding(kind, partition, begin, cp.offset, cp.at, f"{where}: {what}")
