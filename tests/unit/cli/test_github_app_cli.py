"""`hamster github-app manifest|convert` as a user runs them, convert against the fake GitHub over HTTP."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.fakegithub import FakeGitHub

HAMSTER = [sys.executable, "-m", "hamster.cli.__main__"]


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def hamster(*args: str, cwd, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAMSTER_")}
    return subprocess.run(
        [*HAMSTER, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_manifest_prints_the_manifest_and_where_to_create_the_app(tmp_path):
    """The manifest goes to stdout as JSON; the Enterprise organisation's creation URL to stderr."""
    done = hamster(
        "github-app", "manifest", "--url", "https://ci.example.com", "--org", "acme",
        "--html", str(tmp_path / "create.html"), cwd=tmp_path, HAMSTER_GITHUB_HOST="ghe.example.com",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["hook_attributes"]["url"] == "https://ci.example.com/webhooks/github"
    assert "https://ghe.example.com/organizations/acme/settings/apps/new" in done.stderr
    assert (
        'action="https://ghe.example.com/organizations/acme/settings/apps/new"'
        in (tmp_path / "create.html").read_text()
    )


def test_convert_writes_the_key_and_prints_the_settings(fake, tmp_path):
    """The code GitHub gave becomes the app id and a private key file only its owner can read."""
    code = fake.app.manifest_code()
    done = hamster(
        "github-app", "convert", code, "--key-file", str(tmp_path / "app.pem"),
        cwd=tmp_path, HAMSTER_GITHUB_API_URL=fake.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"HAMSTER_GITHUB_APP_ID={fake.app.app_id}" in done.stdout
    key = tmp_path / "app.pem"
    assert key.read_bytes() == fake.app.private_key_pem()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "app.webhook-secret").read_text()
    again = hamster("github-app", "convert", code, cwd=tmp_path, HAMSTER_GITHUB_API_URL=fake.url)
    assert again.returncode == 1 and "codes are good for an hour, and once" in again.stderr
