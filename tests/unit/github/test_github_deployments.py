"""Deployment statuses through the GitHub adapter, over real HTTP against the fake GitHub server."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from hamster.github.client import GitHubCallFailed, GitHubClient
from hamster.settings import load_settings
from tests.fakegithub import FakeGitHub

SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def client(fake: FakeGitHub, tmp_path) -> GitHubClient:
    settings = load_settings(
        github_api_url=fake.url, github_api_token=fake.token, github_write_interval_s=0, home=tmp_path
    )
    return GitHubClient(settings)


def post(fake: FakeGitHub, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        fake.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {fake.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_status_lands_on_the_deployment(fake: FakeGitHub, tmp_path):
    """create_deployment_status posts one status of that state, description and link to the deployment."""
    fake.add_deployment("acme/site", 42, SHA, "main", "staging")
    client(fake, tmp_path).create_deployment_status(
        "acme/site", 42, "in_progress", "running ship", "https://x/1"
    )
    [status] = fake.deployment_statuses("acme/site", 42)
    assert (status["state"], status["description"], status["environment"]) == (
        "in_progress",
        "running ship",
        "staging",
    )
    assert status["log_url"] == "https://x/1"
    assert status["deployment_url"] == f"{fake.url}/repos/acme/site/deployments/42"
    assert status["creator"]["login"]  # a full GitHub object, as recorded


def test_status_carries_the_environment_url(fake: FakeGitHub, tmp_path):
    """log_url and environment_url reach GitHub as such (GitHub copies log_url to target_url)."""
    fake.add_deployment("acme/site", 42, SHA, "main")
    client(fake, tmp_path).create_deployment_status(
        "acme/site", 42, "success", "done", "https://ci/runs/1", "https://site.example.com"
    )
    [sent] = [r.body for r in fake.seen("POST", "/deployments/42/statuses")]
    assert sent == {
        "state": "success",
        "description": "done",
        "log_url": "https://ci/runs/1",
        "environment_url": "https://site.example.com",
    }
    [status] = fake.deployment_statuses("acme/site", 42)
    assert (status["log_url"], status["target_url"]) == ("https://ci/runs/1", "https://ci/runs/1")
    assert status["environment_url"] == "https://site.example.com"


def test_urls_without_a_value_are_left_out(fake: FakeGitHub, tmp_path):
    """No log URL (no HAMSTER_PUBLIC_URL) and no environment URL: neither is sent, not even as null."""
    fake.add_deployment("acme/site", 42, SHA, "main")
    client(fake, tmp_path).create_deployment_status("acme/site", 42, "queued", "queued", None)
    [sent] = [r.body for r in fake.seen("POST", "/deployments/42/statuses")]
    assert sent == {"state": "queued", "description": "queued"}
    [status] = fake.deployment_statuses("acme/site", 42)
    assert (status["log_url"], status["environment_url"]) == ("", "")


def test_missing_deployment_is_an_error(fake: FakeGitHub, tmp_path):
    """A status for a deployment GitHub does not have fails with GitHubCallFailed, and nothing is stored."""
    github = client(fake, tmp_path)
    with pytest.raises(GitHubCallFailed, match="404"):
        asyncio.run(github.call(github.create_deployment_status, "acme/site", 7, "success", "done", None))
    assert fake.deployment_statuses("acme/site", 7) == []


def test_fake_refuses_what_github_refuses(fake: FakeGitHub):
    """Like GitHub: an unknown state, a description over 140 characters or a URL that is not a string (null
    too) is 422, a missing deployment 404."""
    fake.add_deployment("acme/site", 42, SHA, "main")
    path = "/repos/acme/site/deployments/42/statuses"
    assert post(fake, path, {"state": "cancelled"})[0] == 422
    assert post(fake, path, {"state": "success", "description": "x" * 141})[0] == 422
    assert post(fake, "/repos/acme/site/deployments/43/statuses", {"state": "success"})[0] == 404
    assert post(fake, path, {"state": "success", "log_url": None})[0] == 422
    assert post(fake, path, {"state": "success", "environment_url": 7})[0] == 422
    assert post(fake, path, {"state": "inactive"})[0] == 201
    assert [s["state"] for s in fake.deployment_statuses("acme/site", 42)] == ["inactive"]
