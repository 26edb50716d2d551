"""`hamster worker` refuses a broken subscribers module at start, with one clear line."""

from __future__ import annotations

import os
import subprocess

from tests.integration.system import HAMSTER, REPO_ROOT


def run_worker(tmp_path, module: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAMSTER_HOME": str(tmp_path), "HAMSTER_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    env.pop("HAMSTER_SUBSCRIBERS", None)
    if module:
        env["HAMSTER_SUBSCRIBERS"] = module
    return subprocess.run(
        [*HAMSTER, "worker"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_duplicate_names_stop_the_worker(tmp_path):
    """Two subscribers with one name: exit 2 and a message naming the module and the name."""
    result = run_worker(tmp_path, "tests.pipelines.broken")
    assert result.returncode == 2
    assert "duplicate subscriber name(s) same" in result.stderr


def test_missing_module(tmp_path):
    """A module that cannot be imported, or none named, stops the worker with one line."""
    result = run_worker(tmp_path, "tests.pipelines.does_not_exist")
    assert result.returncode == 2 and "cannot import it" in result.stderr
    result = run_worker(tmp_path, None)
    assert result.returncode == 2 and "HAMSTER_SUBSCRIBERS" in result.stderr


def test_malformed_setting(tmp_path):
    """A malformed setting names the variable."""
    env = {**os.environ, "HAMSTER_KAFKA_BOOTSTRAP": "not-a-host-port", "HAMSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [*HAMSTER, "worker"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "HAMSTER_KAFKA_BOOTSTRAP" in result.stderr
