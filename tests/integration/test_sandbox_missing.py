"""Where bubblewrap cannot run, shell stages are refused, unless HAMSTER_SANDBOX=off says to run them bare.

Each case runs in a fresh Python process whose PATH holds no bwrap (what a machine without Debian's
bubblewrap looks like to Hamster), calling the shell task as a worker's task process would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from hamster.execution import sandbox
from hamster.pipelines.context import TaskContext
from hamster.errors import TaskError
from hamster.github.client import GitHubClient
from hamster.github.objects import EventObjects
from hamster.intake.github_events import EventInfo
from hamster.settings import load_settings
from hamster.tasks import shell

settings = load_settings(home=sys.argv[1], sandbox=sys.argv[2])
event = EventInfo(name="push", delivery_id="d", repo="acme/app")
ctx = TaskContext(event=event, params={}, outputs={}, run_id="run-1", attempt=1, subscriber="s",
                  stage="probe", github=EventObjects(GitHubClient(settings), event))
answer = {"unavailable": sandbox.unavailable()}
try:
    answer["output"] = shell("echo ran bare", name="probe")(ctx)["output"]
except TaskError as exc:
    answer["refused"] = [type(exc).__name__, str(exc), exc.retryable]
print(json.dumps(answer))
"""


def attempt(tmp_path: Path, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "home"), mode],
        env={"PATH": str(tmp_path / "no-bwrap-here"), "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_without_bubblewrap_a_shell_stage_is_refused_without_retries(tmp_path):
    """No bwrap: the sandbox says why, and the stage fails with SandboxUnavailable (not retried), naming
    HAMSTER_SANDBOX=off; the command never ran."""
    answer = attempt(tmp_path, "on")
    assert "bubblewrap (bwrap) is not installed" in answer["unavailable"]
    name, message, retryable = answer["refused"]
    assert name == "SandboxUnavailable" and "HAMSTER_SANDBOX=off" in message and retryable is False
    assert "output" not in answer


def test_with_the_sandbox_off_on_purpose_it_runs_bare(tmp_path):
    """HAMSTER_SANDBOX=off: the same stage runs, unsandboxed, and its log says so."""
    answer = attempt(tmp_path, "off")
    assert "ran bare" in answer["output"] and "no sandbox: HAMSTER_SANDBOX=off" in answer["output"]


def test_a_worker_without_bubblewrap_says_so_at_start(kafka_bootstrap, tmp_path):
    """A real worker on a PATH without bwrap logs, once ready, that shell stages will be refused."""
    hamster = System(kafka_bootstrap, tmp_path, "tests.pipelines.trust")
    hamster.env["PATH"] = str(tmp_path / "no-bwrap-here")
    try:
        hamster.start_worker("worker-1")
        hamster.wait_workers_ready({"attack"})
        line = wait_until(
            lambda: next(
                (x for x in hamster.log_tail("worker-1", 400).splitlines() if "sandbox:" in x), None
            ),
            60,
            what="the worker's word on its sandbox",
        )
    finally:
        hamster.stop()
    assert "bubblewrap (bwrap) is not installed" in line and "shell stages will be refused" in line
