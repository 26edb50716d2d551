"""What the pages show, computed from the API's run dicts: pure functions, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hamster.runs.lifecycle import FINAL

LOG_TAIL_LINES = 20
# Output keys that hold a command's log, as the subprocess helpers and checkout tasks return them.
_LOG_KEYS = ("log", "stdout", "stderr", "output")
_MAX_OUTPUT_CHARS = 4000


def github_link(run: dict[str, Any], web_url: str = "https://github.com") -> str | None:
    """The GitHub page of what triggered the run: its pull request, else its commit, else the repository."""
    repo = run.get("repo")
    if not repo:
        return None
    base = f"{web_url.rstrip('/')}/{repo}"
    if run.get("pr_number"):
        return f"{base}/pull/{run['pr_number']}"
    if run.get("sha"):
        return f"{base}/commit/{run['sha']}"
    return base


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def log_tails(stage: dict[str, Any]) -> dict[str, str]:
    """Last lines of every log a stage left: text fields of its output, and its error's traceback."""
    tails: dict[str, str] = {}
    output = stage.get("output")
    if isinstance(output, dict):
        for key in _LOG_KEYS:
            if isinstance(output.get(key), str) and output[key].strip():
                tails[key] = tail(output[key])
    error = stage.get("error") or {}
    if error.get("traceback"):
        tails["traceback"] = tail(error["traceback"])
    return tails


def pretty_output(output: Any) -> str:
    if output is None:
        return ""
    text = json.dumps(output, indent=2, sort_keys=True, default=str)
    return text if len(text) <= _MAX_OUTPUT_CHARS else text[:_MAX_OUTPUT_CHARS] + "\n…"


def duration_text(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)} min {int(ms % 60_000 / 1000)} s"


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def run_duration_ms(run: dict[str, Any]) -> float | None:
    start, end = _at(run.get("started_at")), _at(run.get("finished_at"))
    return (end - start).total_seconds() * 1000 if start and end else None


@dataclass(frozen=True)
class Bar:
    """One stage on the run's timeline, as percentages of the span from the run's request to its end."""

    name: str
    status: str
    left: float
    width: float
    duration: str


def timeline(run: dict[str, Any]) -> list[Bar]:
    """Bars for the stages that started; a stage still running reaches to its latest known time."""
    started = [(s, _at(s["started_at"])) for s in run["stages"] if s["started_at"]]
    if not started:
        return []
    origin = min(at for _, at in started if at is not None)
    ends = [_at(s["finished_at"]) or at for s, at in started]
    end_candidates = [e for e in [*ends, _at(run.get("finished_at"))] if e is not None]
    span = max((max(end_candidates) - origin).total_seconds(), 1e-3)
    bars = []
    for (stage, at), end in zip(started, ends, strict=True):
        assert at is not None and end is not None
        left = (at - origin).total_seconds() / span * 100
        width = max((end - at).total_seconds() / span * 100, 1.0)
        bars.append(
            Bar(
                stage["name"],
                stage["status"],
                round(left, 2),
                round(min(width, 100 - left), 2),
                duration_text(stage["duration_ms"]),
            )
        )
    return bars


def graph_columns(run: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The run's stages drawn as a graph: column k holds the stages k steps from a stage that needs
    nothing; each box lists what it needs (a line is one stage per column)."""
    depth: dict[str, int] = {}
    for stage in run["stages"]:  # stages come after what they need (hamster.pipelines.graph)
        depth[stage["name"]] = 1 + max((depth.get(n, 0) for n in stage.get("needs", [])), default=-1)
    columns: list[list[dict[str, Any]]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for stage in run["stages"]:
        columns[depth[stage["name"]]].append(stage)
    return columns


def is_final(status: str) -> bool:
    return status in FINAL


def final_statuses() -> list[str]:
    return sorted(FINAL)
