"""Where a run's files live under ``HAMSTER_HOME``: its workspace and its stage logs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def _part(value: str, what: str) -> str:
    # Run ids and stage names become directory names: nothing that could climb out of HAMSTER_HOME.
    if not _SAFE.match(value) or value in {".", ".."}:
        raise ValueError(f"{what} {value!r} cannot name a directory")
    return value


def workspace_path(home: Path, run_id: str) -> Path:
    return home.resolve() / "workspaces" / _part(run_id, "run id")


def stage_workspace(home: Path, run_id: str, outputs: dict[str, object]) -> Path:
    """Where a stage works: the checkout's workspace when the run has one, else the run's own."""
    checkout = outputs.get("checkout")
    found = checkout.get("workspace") if isinstance(checkout, dict) else None
    return Path(str(found)) if found else workspace_path(home, run_id)


def stage_log_path(home: Path, run_id: str, stage: str) -> Path:
    return home.resolve() / "logs" / "runs" / _part(run_id, "run id") / f"{_part(stage, 'stage')}.log"


def remove_workspace(home: Path, run_id: str) -> bool:
    """Remove the run's workspace; True when there was one."""
    path = workspace_path(home, run_id)
    if not path.exists():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced: outputs and logs must never carry a credential."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
