"""Log lines as text or JSON (``HAMSTER_LOG_FORMAT``), each carrying the delivery and run it is about.

The intake and the agents ``bind(delivery_id=…, run_id=…)`` when they take up a webhook or a stage; the ids
live in context variables, so every line logged from that task (and from tasks it starts) carries them,
whichever module logs it, and a Faust agent's next message replaces them.

    text   2026-11-27 22:40:01,123 INFO agents.stages [delivery=… run=…]: run …: succeeded
    json   {"time": "…", "level": "INFO", "logger": "agents.stages", "message": "…",
            "delivery_id": "…", "run_id": "…"}
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

_DELIVERY_ID: ContextVar[str | None] = ContextVar("hamster_delivery_id", default=None)
_RUN_ID: ContextVar[str | None] = ContextVar("hamster_run_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(hamster_ids)s: %(message)s"


def bind(*, delivery_id: str | None = None, run_id: str | None = None) -> None:
    """Make the following log lines of this task carry these ids (None clears one)."""
    _DELIVERY_ID.set(delivery_id)
    _RUN_ID.set(run_id)


def current_ids() -> dict[str, str]:
    """The ids bound in this context, only those that are set."""
    ids = {"delivery_id": _DELIVERY_ID.get(), "run_id": _RUN_ID.get()}
    return {key: value for key, value in ids.items() if value is not None}


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record: ``record.delivery_id``, ``record.run_id``, ``hamster_ids``."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        record.delivery_id = ids.get("delivery_id")
        record.run_id = ids.get("run_id")
        shown = " ".join(f"{key.removesuffix('_id')}={value}" for key, value in ids.items())
        record.hamster_ids = f" [{shown}]" if shown else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("delivery_id", "run_id"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def make_handler(log_format: LogFormat) -> logging.Handler:
    """A stderr handler in ``log_format`` that stamps the bound ids on every record."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure(level: str, log_format: LogFormat) -> logging.Handler:
    """Send the root logger's lines through one such handler (replacing any handlers it had)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = make_handler(log_format)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def dict_config(level: str, log_format: LogFormat) -> dict[str, object]:
    """The same set-up as ``configure``, as a ``logging.config.dictConfig`` (what Faust's worker takes)."""
    formatter: dict[str, object] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"hamster_ids": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"hamster": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "filters": ["hamster_ids"],
                "formatter": "hamster",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }
