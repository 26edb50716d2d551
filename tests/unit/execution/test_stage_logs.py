"""Stage logs before they are written: chunks, masking (also of a secret split over two writes), the cap."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from hamster.execution.stage_logs import MASK, StageLog, TaskLogHandler, worker_secrets
from hamster.settings import load_settings

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def stage_log(secrets: tuple[str, ...] = ("hunter22",), max_bytes: int = 1000) -> StageLog:
    return StageLog("run-1", "build", 0, 2, secrets=secrets, max_bytes=max_bytes)


def test_writes_of_one_stream_are_joined_and_numbered():
    """Consecutive writes of a stream make one chunk; a change of stream starts the next; seq counts on."""
    log = stage_log()
    log.write("stdout", "a\n")
    log.write("stdout", "b\n")
    log.write("stderr", "oops\n")
    first = log.take(at=AT)
    assert [(c.stream, c.text, c.seq) for c in first] == [("stdout", "a\nb\n", 0), ("stderr", "oops\n", 1)]
    assert all(c.run_id == "run-1" and c.stage == "build" and c.attempt == 2 and not c.end for c in first)
    log.write("log", "later\n")
    [last] = log.take(final=True, at=AT)
    assert (last.seq, last.end, last.text) == (2, True, "later\n")


def test_an_attempt_that_printed_nothing_still_ends():
    """The last chunk says end, even with no text, so readers know the section is complete."""
    [end] = stage_log().take(final=True)
    assert end.end and end.text == "" and end.stream == "hamster"


def test_secrets_are_masked_also_when_split_over_two_writes():
    """The start of a secret at the end of a chunk waits for the next write instead of leaving unmasked."""
    log = stage_log()
    log.write("stdout", "token=hunt")
    early = log.take()
    assert "".join(c.text for c in early) == "token="
    log.write("stdout", "er22 done\n")
    assert "".join(c.text for c in log.take()) == f"{MASK} done\n"
    log.write("stdout", "ends with hun")
    assert "".join(c.text for c in log.take(final=True)) == "ends with hun"  # nothing followed: kept


def test_a_secret_added_by_the_task_is_masked():
    """ctx.mask adds a secret for the rest of the attempt; the longest secret is masked whole."""
    log = stage_log()
    log.add_secret("hunter22-extended")
    log.write("stdout", "hunter22-extended and hunter22\n")
    assert log.take(final=True)[0].text == f"{MASK} and {MASK}\n"


def test_the_cap_cuts_the_log_with_one_line_saying_so():
    """Past max_bytes the text is cut, one hamster line says so, and later writes are dropped."""
    log = stage_log(max_bytes=10)
    log.write("stdout", "0123456789abcdef\n")
    log.write("stdout", "more\n")
    chunks = log.take(final=True)
    assert chunks[0].text == "0123456789"
    assert chunks[1].stream == "hamster" and "log truncated" in chunks[1].text
    assert "HAMSTER_LOG_MAX_BYTES" in chunks[1].text and len(chunks) == 2


def test_the_worker_masks_its_secret_settings_and_secret_like_variables():
    """Every SecretStr setting and every HAMSTER_* variable named like a secret."""
    settings = load_settings(webhook_secret="one,two", api_token="api-123", github_api_token="ghp-xyz")
    found = worker_secrets(settings, {"HAMSTER_DEPLOY_TOKEN": "deploy-1", "HAMSTER_HOME": "/srv"})
    assert set(found) == {"one", "two", "api-123", "ghp-xyz", "deploy-1"}


def test_logging_reaches_the_log_of_the_attempt_it_runs_in():
    """The handler sends a record to the stage log bound in the current context, and nowhere else."""
    from hamster.execution import stage_logs

    log = stage_log()
    handler = TaskLogHandler()
    record = logging.LogRecord("pipeline", logging.WARNING, __file__, 1, "careful %s", ("hunter22",), None)
    handler.emit(record)  # no attempt bound: dropped
    token = stage_logs.CURRENT.set(log.write)
    try:
        handler.emit(record)
    finally:
        stage_logs.CURRENT.reset(token)
    assert [c.text for c in log.take(final=True)] == [f"WARNING pipeline: careful {MASK}\n"]
