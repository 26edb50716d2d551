"""Signed checkpoints of the run log: folding, signing, and what verifying against them reveals."""

from __future__ import annotations

from datetime import UTC, datetime

from hamster.runs.audit_checkpoints import (
    Checkpoint,
    advance,
    decode_checkpoint,
    genesis,
    sign,
    signed_by,
    verify_partition,
)

KEY = b"k" * 32
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def log(n: int, start: int = 0) -> list[tuple[int, bytes, bytes]]:
    return [(start + i, f"run-{i % 3}".encode(), f'{{"seq": {i}}}'.encode()) for i in range(n)]


def checkpoints_of(records, every: int, since: int = 0, key: bytes = KEY) -> list[Checkpoint]:
    _, due = advance(genesis(0, since), records, every)
    return [sign(state, AT, key) for state in due]


def verify(records, checkpoints, log_start: int = 0):
    return verify_partition(0, log_start, records, checkpoints, KEY)


def test_a_checkpoint_every_n_records_and_one_for_the_tail():
    """advance checkpoints after every N records, plus the last record when it is not on a boundary."""
    _, due = advance(genesis(0, 0), log(7), every=3)
    assert [(s.offset, s.count) for s in due] == [(2, 3), (5, 6), (6, 7)]
    _, exact = advance(genesis(0, 0), log(6), every=3)
    assert [s.offset for s in exact] == [2, 5]
    assert advance(genesis(0, 0), [], every=3)[1] == []


def test_folding_continues_where_a_checkpoint_left_off():
    """Folding in two goes, resumed from the first checkpoint, ends where one go does."""
    records = log(10)
    whole, _ = advance(genesis(0, 0), records, every=100)
    half, _ = advance(genesis(0, 0), records[:4], every=100)
    rest, _ = advance(half, records, every=100)  # records already folded are skipped
    assert rest == whole


def test_signatures_cover_every_field_and_need_the_key():
    """A checkpoint verifies with its key only; any changed field breaks it; it survives its JSON."""
    [checkpoint] = checkpoints_of(log(3), every=10)
    assert signed_by(checkpoint, KEY)
    assert not signed_by(checkpoint, b"x" * 32)
    for change in ({"offset": 1}, {"count": 2}, {"chain": "0" * 64}, {"at": datetime.now(UTC)}):
        assert not signed_by(checkpoint.model_copy(update=change), KEY)
    decoded = decode_checkpoint(checkpoint.model_dump_json().encode())
    assert decoded == checkpoint and decoded is not None and signed_by(decoded, KEY)
    assert decode_checkpoint(b"not json") is None and decode_checkpoint(b'{"partition": 1}') is None


def test_an_untouched_log_matches_its_checkpoints():
    """Every record folded again gives every checkpoint; records after the newest are counted uncovered."""
    records = log(10)
    report = verify([*records, (10, b"run-0", b"{}")], checkpoints_of(records, every=4))
    assert report.findings == ()
    assert (report.checkpoints, report.checked, report.uncovered) == (3, 10, 1)


def test_a_forged_record_resealed_is_a_changed_range():
    """A record's content replaced (whatever its own hashes say) breaks the range its checkpoint covers."""
    records = log(9)
    forged = list(records)
    forged[4] = (4, records[4][1], b'{"seq": 4, "output": "forged"}')
    report = verify(forged, checkpoints_of(records, every=3))
    [finding] = report.findings
    assert (finding.kind, finding.first, finding.last) == ("changed", 3, 5)
    assert "forged" in finding.message


def test_two_records_swapped_are_reordered():
    """The same records in another order: the ordered chain differs, the order-free mix does not."""
    records = log(6)
    swapped = [*records[:2], (2, *records[3][1:]), (3, *records[2][1:]), *records[4:]]
    [finding] = verify(swapped, checkpoints_of(records, every=6)).findings
    assert finding.kind == "reordered"


def test_a_record_removed_from_the_middle_is_found():
    """A record missing at its offset is fewer records than counted; in a copy where the later records moved
    up, the range holds other records and the log ends short of the newest checkpoint."""
    records = log(8)
    checkpoints = checkpoints_of(records, every=4)
    [gap] = verify(records[:3] + records[4:], checkpoints).findings
    assert gap.kind == "removed-or-inserted" and "1 record(s) fewer" in gap.message
    copy = [(i, k, v) for i, (_, k, v) in enumerate(records[:3] + records[4:])]
    assert [f.kind for f in verify(copy, checkpoints).findings] == ["changed", "cut-off"]


def test_a_cut_off_tail_is_reported_with_how_many_records_went():
    """A log that ends before the newest checkpoint's offset lost its tail; the finding says how much."""
    records = log(10)
    checkpoints = checkpoints_of(records, every=4)  # at offsets 3, 7, 9
    [finding] = verify(records[:6], checkpoints).findings
    assert finding.kind == "cut-off" and (finding.first, finding.last) == (4, 9)
    assert "ends at offset 5" in finding.message and "4 record(s) cut off" in finding.message
    [empty] = verify([], checkpoints).findings
    assert empty.kind == "cut-off" and "10 record(s)" in empty.message


def test_a_forged_checkpoint_is_reported_and_not_used():
    """A checkpoint signed with another key (a forger re-checkpointing a forged log) is a finding."""
    records = log(6)
    forged = list(records)
    forged[1] = (1, b"run-1", b"{}")
    theirs = checkpoints_of(forged, every=6, key=b"f" * 32)
    ours = checkpoints_of(records, every=6)
    kinds = sorted(f.kind for f in verify(forged, theirs + ours).findings)
    assert kinds == ["bad-signature", "changed"]


def test_after_retention_the_fold_starts_at_a_checkpoint_inside_the_log():
    """With the log's start deleted, checking starts at the first checkpoint at or after it."""
    records = log(12)
    checkpoints = checkpoints_of(records, every=4)  # offsets 3, 7, 11
    kept = records[5:]  # retention deleted offsets 0-4
    report = verify(kept, checkpoints, log_start=5)
    assert report.findings == () and report.checkpoints == 1 and report.checked == 4
    tampered = list(kept)
    tampered[-1] = (11, b"run-2", b"{}")
    assert [f.kind for f in verify(tampered, checkpoints, log_start=5).findings] == ["changed"]


def test_a_chain_begun_after_the_logs_start_is_verified_from_there():
    """Checkpoints begun at offset 5 (the log's start then) verify a log that still starts at 0."""
    records = log(10)
    checkpoints = checkpoints_of(records[5:], every=5, since=5)
    report = verify(records, checkpoints)
    assert report.findings == () and report.checked == 5


def test_no_checkpoints_checks_nothing():
    """Without checkpoints every record is uncovered and nothing is found (the CLI says what that means)."""
    report = verify(log(4), [])
    assert (report.checkpoints, report.uncovered, report.findings) == (0, 4, ())
