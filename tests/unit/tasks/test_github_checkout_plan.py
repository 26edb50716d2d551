"""How checkout reaches the repository: URL, refs and credentials, decided without running git."""

from __future__ import annotations

import base64

import pytest

from hamster.errors import ConfigurationError
from hamster.intake.github_events import EventInfo, event_info
from hamster.settings import load_settings
from hamster.tasks.git import plan_checkout
from tests.samples import load

PR = EventInfo(
    name="pull_request", delivery_id="d", repo="acme/app", sha="a" * 40, pr_number=5, branch="main"
)
PUSH = EventInfo(name="push", delivery_id="d", repo="acme/app", sha="b" * 40, ref="refs/heads/dev")


def test_ssh_with_the_key_checks_host_keys(tmp_path):
    """With a key, checkout goes over ssh to git@host: with the key and StrictHostKeyChecking=yes."""
    key = tmp_path / "github.key"
    key.write_text("k")
    known = tmp_path / "known_hosts"
    settings = load_settings(github_key=key, github_known_hosts=known, github_host="ghe.example.com")
    plan = plan_checkout(settings, PR, cwd=tmp_path)
    assert plan.url == "git@ghe.example.com:acme/app.git" and plan.refspec == "refs/pull/5/head"
    ssh = plan.env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in ssh and f"-i {key}" in ssh and f"UserKnownHostsFile={known}" in ssh
    assert "StrictHostKeyChecking=no" not in ssh


def test_default_key_is_github_key_in_the_working_directory(tmp_path):
    """Without HAMSTER_GITHUB_KEY, ./github.key is used when present."""
    (tmp_path / "github.key").write_text("k")
    plan = plan_checkout(load_settings(github_api_token="t"), PUSH, cwd=tmp_path)
    assert plan.url == "git@github.com:acme/app.git" and plan.refspec == "refs/heads/dev"
    assert str(tmp_path / "github.key") in plan.env["GIT_SSH_COMMAND"]


def test_https_token_goes_in_a_header_not_the_url(tmp_path):
    """Over https the token travels as an extra header set through the environment, never in the URL."""
    plan = plan_checkout(load_settings(github_api_token="s3cret"), PUSH, cwd=tmp_path)
    assert plan.url == "https://github.com/acme/app.git" and "s3cret" not in plan.url
    assert plan.env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    assert (
        plan.env["GIT_CONFIG_VALUE_0"]
        == "Authorization: Basic " + base64.b64encode(b"x-access-token:s3cret").decode()
    )


def test_app_installation_token_goes_over_https_on_enterprise(tmp_path):
    """With a GitHub App the installation's token is given: https to the Enterprise host, in the header."""
    settings = load_settings(
        github_app_id=7, github_app_key=tmp_path / "k.pem", github_host="ghe.example.com"
    )
    plan = plan_checkout(settings, PR, cwd=tmp_path, token="ghs_installation")
    assert plan.url == "https://ghe.example.com/acme/app.git"
    assert plan.env["GIT_CONFIG_KEY_0"] == "http.https://ghe.example.com/.extraHeader"
    assert plan.env["GIT_CONFIG_VALUE_0"].endswith(
        base64.b64encode(b"x-access-token:ghs_installation").decode()
    )


def test_merge_needs_a_pull_request(tmp_path):
    """merge=True fetches the base branch of a PR, and is refused for a push."""
    assert plan_checkout(load_settings(), PR, merge=True, cwd=tmp_path).base_ref == "refs/heads/main"
    with pytest.raises(ConfigurationError, match="needs a pull request"):
        plan_checkout(load_settings(), PUSH, merge=True, cwd=tmp_path)


def test_merge_group_head_is_checked_out_as_is(tmp_path):
    """A merge group: its own branch at its head sha; merge=True adds nothing, the head is the merge."""
    payload = load("merge_group", "checks_requested.payload.json")
    group = event_info("merge_group", "d", payload)
    plan = plan_checkout(load_settings(github_api_token="t"), group, merge=True, cwd=tmp_path)
    assert plan.refspec == payload["merge_group"]["head_ref"]
    assert (plan.sha, plan.base_ref) == (payload["merge_group"]["head_sha"], None)


def test_deployment_is_fetched_by_its_sha(tmp_path):
    """A deployment names a bare branch, tag or sha: the deployed sha is what is fetched."""
    deployment = event_info("deployment", "d", load("deployment", "payload.json"))
    plan = plan_checkout(load_settings(github_api_token="t"), deployment, cwd=tmp_path)
    assert plan.refspec == plan.sha == deployment.sha
