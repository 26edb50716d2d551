"""What to show of the broker's log when a start fails: its first error, then its last lines. Pure.

Kafka logs a failed start as an ERROR with a Java stack trace, then shuts down for a hundred more lines, so
the last lines alone rarely say what went wrong. Stack frames are dropped; the "Caused by" chain stays.
"""

from __future__ import annotations

import re

TAIL_LINES = 30
ERROR_LINES = 8

_STACK_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")
_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [^]]*\] (\w+) ")  # log4j2.properties' "[%d] %p %m (%c)%n"


def excerpt(lines: list[str]) -> list[str]:
    """The first ERROR record (with its exception lines) unless the tail shows it, then the last lines."""
    lines = [line for line in lines if not _STACK_FRAME.match(line)]
    tail_start = max(0, len(lines) - TAIL_LINES)
    first_error = next((i for i, line in enumerate(lines) if _level(line) in ("ERROR", "FATAL")), None)
    if first_error is None or first_error >= tail_start:
        return lines[tail_start:]
    end = first_error + 1
    while end < len(lines) and end - first_error < ERROR_LINES and _level(lines[end]) is None:
        end += 1  # the exception and "Caused by" lines belong to the record
    return [*lines[first_error:end], "…", *lines[tail_start:]]


def _level(line: str) -> str | None:
    match = _RECORD.match(line)
    return match.group(1) if match else None
