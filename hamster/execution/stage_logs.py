"""A stage attempt's log as records: what the task printed, cut into chunks, masked and capped.

Theory of operation. Everything an attempt writes (a shell command's stdout and stderr, ``ctx.log``, the
task's Python ``logging``) is ``write``-n into the attempt's ``StageLog`` as it happens, from any thread.
The worker ``take``-s what is pending at least every half second and sends each chunk to ``<ns>.logs``
(key: the run id, so a run's log sits in one partition in order). Before a chunk leaves:

- **Masking**: every secret the worker knows is replaced by ``***``, as GitHub Actions masks them. A
  secret may arrive in two writes; the end of the pending text that could begin a secret is held back
  until the next write or the end of the attempt, so no chunk carries half of one unmasked.
- **The cap**: past ``HAMSTER_LOG_MAX_BYTES`` of one attempt, one ``hamster`` line says so and the rest
  is dropped (the task keeps running: its log is not its result).

Outputs and errors are masked the same way before they are recorded (``mask_json``,
``hamster.execution.outcome.masked``). The last chunk of an attempt has ``end: true``, so readers know the
section is complete. No I/O here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from hamster.settings import Settings

Stream = Literal["stdout", "stderr", "log", "hamster"]
STREAMS: tuple[Stream, ...] = get_args(Stream)
MASK = "***"
# Names of HAMSTER_* variables that hold credentials even when Settings does not know them.
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "PRIVATE")


class LogChunk(BaseModel):
    """One record of ``<ns>.logs``: consecutive text of one stream of one stage attempt."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    stage: str
    index: int
    attempt: int
    stream: Stream
    seq: int  # 0, 1, 2… within the attempt
    time: datetime
    text: str
    end: bool = False  # the attempt's last chunk: nothing follows for this stage attempt


def worker_secrets(settings: Settings, environ: dict[str, str] | None = None) -> list[str]:
    """What a worker masks: every secret setting's value, and HAMSTER_* variables named like a secret."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        values = value if isinstance(value, tuple) else (value,)
        found += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
    for key, value in (os.environ if environ is None else environ).items():
        if key.startswith("HAMSTER_") and any(word in key for word in _SECRET_WORDS):
            found.append(value)
    if settings.database_url:  # the database's password, when its URL carries one
        with contextlib.suppress(ValueError):
            found.append(urlsplit(settings.database_url).password or "")
    return sorted({s for s in found if s.strip()}, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:  # longest first, so a secret containing another is masked whole
        if secret:
            text = text.replace(secret, MASK)
    return text


def mask_json(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (JSON: a stage's output) with every secret masked in every string, keys included."""
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, list):
        return [mask_json(item, secrets) for item in value]
    if isinstance(value, dict):
        return {mask(str(key), secrets): mask_json(item, secrets) for key, item in value.items()}
    return value


def _held_back(text: str, secrets: Iterable[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a secret."""
    longest = 0
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(text)), longest, -1):
            if secret.startswith(text[-size:]):
                longest = size
                break
    return longest


class StageLog:
    """The pending log of one stage attempt. ``write`` from any thread; ``take`` from the sender."""

    def __init__(
        self, run_id: str, stage: str, index: int, attempt: int, *, secrets: Iterable[str], max_bytes: int
    ) -> None:
        self.run_id, self.stage, self.index, self.attempt = run_id, stage, index, attempt
        self.max_bytes = max_bytes
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pieces: list[tuple[Stream, str]] = []
        self._written = 0
        self._truncated = False
        self._seq = 0
        self._lock = threading.Lock()

    def add_secret(self, secret: str) -> None:
        """Mask ``secret`` too (a task says what it was given: ``ctx.mask``)."""
        with self._lock:
            if secret and secret not in self._secrets:
                self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        kind: Stream = stream if stream in STREAMS else "log"
        with self._lock:
            if self._truncated:
                return
            size = len(text.encode())
            if self._written + size > self.max_bytes:
                room = self.max_bytes - self._written
                text = text.encode()[:room].decode(errors="ignore")
                self._truncated = True
            self._written += len(text.encode())
            if text:
                self._pieces.append((kind, text))
            if self._truncated:
                self._pieces.append(
                    (
                        "hamster",
                        f"\n[hamster] log truncated: this stage wrote more than {self.max_bytes} bytes "
                        "(HAMSTER_LOG_MAX_BYTES); the rest of its output is not kept\n",
                    )
                )

    def take(self, *, final: bool = False, at: datetime | None = None) -> list[LogChunk]:
        """The chunks to send now: consecutive writes of one stream joined, masked. ``final``: the
        attempt is over, so nothing is held back and the last chunk says ``end``."""
        stamp = at or datetime.now(UTC)
        with self._lock:
            runs: list[tuple[Stream, str]] = []
            for stream, text in self._pieces:
                if runs and runs[-1][0] == stream:
                    runs[-1] = (stream, runs[-1][1] + text)
                else:
                    runs.append((stream, text))
            self._pieces = []
            if runs and not final:
                stream, text = runs[-1]
                keep = _held_back(text, self._secrets)
                if keep:
                    self._pieces = [(stream, text[-keep:])]
                    runs[-1] = (stream, text[:-keep])
            chunks = []
            for stream, text in runs:
                if text:
                    chunks.append(self._chunk(stream, mask(text, self._secrets), stamp))
            if final:
                if chunks:
                    chunks[-1] = chunks[-1].model_copy(update={"end": True})
                else:
                    chunks.append(self._chunk("hamster", "", stamp, end=True))
            return chunks

    def _chunk(self, stream: Stream, text: str, stamp: datetime, end: bool = False) -> LogChunk:
        chunk = LogChunk(
            run_id=self.run_id,
            stage=self.stage,
            index=self.index,
            attempt=self.attempt,
            stream=stream,
            seq=self._seq,
            time=stamp,
            text=text,
            end=end,
        )
        self._seq += 1
        return chunk


# The Python ``logging`` of a task: records logged while an attempt runs (in its asyncio task, or a thread
# it started with ``asyncio.to_thread``, which copies the context) go to that attempt's log too.
CURRENT: ContextVar[Callable[[Stream, str], None] | None] = ContextVar("hamster_stage_log", default=None)
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class TaskLogHandler(logging.Handler):
    """Sends log records to the stage log of the attempt whose context they were logged in."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        sink = CURRENT.get()
        if sink is None:
            return
        try:
            sink("log", self.format(record) + "\n")
        except Exception:
            self.handleError(record)
