"""The GitHub App: its JWT, installation tokens (per installation, renewed), over HTTP to the strict fake."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hamster.errors import ConfigurationError
from hamster.github.app import JWT_BACKDATE_S, RENEW_BEFORE_S, jwt_claims
from hamster.github.check_actions import buttons
from hamster.github.client import GitHubCallFailed, GitHubClient
from hamster.settings import load_settings
from tests.fakegithub import FakeGitHub

SHA = "c0ffee0000000000000000000000000000000002"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.app.install(101, "acme", ["acme/one"])
        server.app.install(202, "widgets", ["widgets/two"])
        yield server


def app_settings(fake: FakeGitHub, tmp_path, **more: Any):
    return load_settings(
        github_api_url=fake.url,
        github_app_id=fake.app.app_id,
        github_app_key=fake.app.write_key(tmp_path / "app.pem"),
        github_write_interval_s=0,
        home=tmp_path,
        **more,
    )


def call(fake: FakeGitHub, path: str, authorization: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(fake.url + path, method=method, headers={"Authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_jwt_claims_follow_githubs_rules():
    """iat a minute back (clock drift), exp within ten minutes of iat, iss the app id."""
    claims = jwt_claims(42, 1_000_000.0)
    assert claims["iat"] == 1_000_000 - JWT_BACKDATE_S and claims["iss"] == "42"
    assert claims["exp"] > 1_000_000 and claims["exp"] - claims["iat"] <= 600


def test_fake_checks_the_jwt_as_github_does(fake, tmp_path):
    """The fake takes a JWT signed with the app's key only, unexpired, exp at most 10 min after iat."""
    now = int(time.time())
    key = fake.app.private_key_pem()
    good = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(fake.app.app_id)}, key, "RS256")
    assert call(fake, "/app", f"Bearer {good}")[0] == 200
    expired = jwt.encode({"iat": now - 700, "exp": now - 100, "iss": str(fake.app.app_id)}, key, "RS256")
    too_long = jwt.encode({"iat": now - 60, "exp": now + 3600, "iss": str(fake.app.app_id)}, key, "RS256")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(fake.app.app_id)}, other_key, "RS256")
    for bad in (expired, too_long, forged):
        status, body = call(fake, "/app", f"Bearer {bad}")
        assert status == 401, body
    assert call(fake, "/app", f"token {fake.token}")[0] == 401  # the app's endpoints want its JWT
    assert call(fake, "/repos/acme/one", f"Bearer {good}")[0] == 403  # the app is not an installation


def test_two_installations_two_tokens(fake, tmp_path):
    """Calls about each repository go out with the token of its own installation, never the other's."""
    client = GitHubClient(app_settings(fake, tmp_path))
    client.for_installation(101).create_status("acme/one", SHA, "pending", "hamster/ci", "queued", None)
    client.for_installation(202).create_status("widgets/two", SHA, "pending", "hamster/ci", "queued", None)
    by_repo = {
        repo: {fake.installation_of(r) for r in fake.requests if r.path.startswith(f"/repos/{repo}")}
        for repo in ("acme/one", "widgets/two")
    }
    assert by_repo == {"acme/one": {101}, "widgets/two": {202}}
    assert [i for i, _ in fake.app.issued] == [101, 202]


def test_an_installation_token_cannot_reach_another_installations_repository(fake, tmp_path):
    """An installation's token on a repository it is not installed on finds nothing, as on GitHub."""
    client = GitHubClient(app_settings(fake, tmp_path)).for_installation(101)
    with pytest.raises(Exception, match="404 Not Found"):
        client.create_status("widgets/two", SHA, "pending", "hamster/ci", "queued", None)
    assert fake.statuses("widgets/two", SHA) == []


def test_without_an_installation_the_repositorys_is_looked_up_once(fake, tmp_path):
    """A run with no installation in its webhook (a replay) uses the repository's, found once."""
    client = GitHubClient(app_settings(fake, tmp_path))
    for state in ("pending", "success"):
        client.create_status("widgets/two", SHA, state, "hamster/ci", state, None)
    assert len(fake.seen("GET", "/repos/widgets/two/installation")) == 1
    assert [s["state"] for s in fake.statuses("widgets/two", SHA)] == ["pending", "success"]
    assert {fake.installation_of(r) for r in fake.seen("POST", "/statuses/")} == {202}


def test_a_token_revoked_early_is_renewed_and_the_call_still_succeeds(fake, tmp_path):
    """GitHub answering 401 to a token it ended early: a new token, the call made again, no error."""
    client = GitHubClient(app_settings(fake, tmp_path)).for_installation(101)
    client.create_status("acme/one", SHA, "pending", "hamster/ci", "queued", None)
    fake.app.expire_tokens(101)
    client.create_status("acme/one", SHA, "success", "hamster/ci", "done", None)
    assert [s["state"] for s in fake.statuses("acme/one", SHA)] == ["pending", "success"]
    assert len(fake.app.issued) == 2
    refused = [r for r in fake.seen("POST", "/statuses/") if fake.installation_of(r) is not None]
    assert len(refused) == 3  # pending; success refused (401), then again with the new token


def test_a_token_near_its_expiry_is_renewed_before_it_is_used(fake, tmp_path):
    """A token with less than the renewal margin left is replaced before the call, not after a 401."""
    fake.app.token_lifetime_s = RENEW_BEFORE_S - 60  # every token is already "near its expiry"
    client = GitHubClient(app_settings(fake, tmp_path)).for_installation(101)
    client.create_status("acme/one", SHA, "pending", "hamster/ci", "queued", None)
    client.create_status("acme/one", SHA, "success", "hamster/ci", "done", None)
    assert len(fake.app.issued) >= 2
    assert len(fake.seen("POST", "/statuses/")) == 2  # nothing was refused


def test_check_runs_are_refused_for_a_personal_token_and_created_by_the_app(fake, tmp_path):
    """GitHub lets only an app's installation write check runs; the fake refuses a personal token."""
    personal = GitHubClient(
        load_settings(github_api_url=fake.url, github_api_token=fake.token, github_write_interval_s=0)
    )
    with pytest.raises(Exception, match="403 You must authenticate via a GitHub App"):
        personal.create_check_run("acme/one", SHA, "hamster/ci", external_id="run-1", status="queued")
    [refused] = fake.seen("POST", "/check-runs")
    assert refused.authorization == f"token {fake.token}"
    assert fake.repo("acme/one").check_runs == {}
    app = GitHubClient(app_settings(fake, tmp_path)).for_installation(101)
    made = app.create_check_run("acme/one", SHA, "hamster/ci", external_id="run-1", status="queued")
    check = fake.repo("acme/one").check_runs[made]
    assert check["app"]["id"] == fake.app.app_id and check["external_id"] == "run-1"


def test_the_fake_refuses_buttons_github_would_refuse(fake, tmp_path):
    """More than three buttons, or a label, identifier (20) or description (40) too long: 422 on create
    and update, as GitHub answers; Hamster's own buttons pass."""
    app = GitHubClient(app_settings(fake, tmp_path)).for_installation(101)
    ours = [b.as_github() for b in buttons(["deploy-to-production-eu-west"])]
    made = app.create_check_run("acme/one", SHA, "hamster/ci", external_id="r", status="queued", actions=ours)
    assert fake.repo("acme/one").check_runs[made]["actions"] == ours
    ok = {"label": "l" * 20, "description": "d" * 40, "identifier": "i" * 20}
    for bad in (
        [ok] * 4,
        [{**ok, "label": "l" * 21}],
        [{**ok, "description": "d" * 41}],
        [{**ok, "identifier": "i" * 21}],
        [{"label": "Go", "description": "Go"}],
    ):
        with pytest.raises(Exception, match="422"):
            app.create_check_run("acme/one", SHA, "hamster/ci", external_id="x", status="queued", actions=bad)
        with pytest.raises(GitHubCallFailed, match="answered 422"):
            app.update_check_run("acme/one", made, actions=bad)
    assert len(fake.repo("acme/one").check_runs) == 1
    app.update_check_run("acme/one", made, actions=[ok] * 3)


def test_app_settings_need_both_id_and_key(tmp_path):
    """An app id without its key (or the reverse) is refused at start, naming what is missing."""
    with pytest.raises(ConfigurationError, match="HAMSTER_GITHUB_APP_KEY"):
        load_settings(github_app_id=7)
    with pytest.raises(ConfigurationError, match="HAMSTER_GITHUB_APP_ID"):
        load_settings(github_app_key=tmp_path / "k.pem")


def test_a_missing_key_file_is_a_configuration_error(fake, tmp_path):
    """A key path that cannot be read fails the first call with a line naming the setting."""
    settings = load_settings(
        github_api_url=fake.url, github_app_id=fake.app.app_id, github_app_key=tmp_path / "absent.pem"
    )
    with pytest.raises(ConfigurationError, match="HAMSTER_GITHUB_APP_KEY: cannot read"):
        GitHubClient(settings).for_installation(101).create_status("acme/one", SHA, "pending", "c", "d", None)


def test_rate_limits_are_tracked_per_installation(fake, tmp_path):
    """Each installation has its own rate limit; the client keeps what GitHub said of each."""
    client = GitHubClient(app_settings(fake, tmp_path))
    for _ in range(3):
        client.for_installation(101).create_status("acme/one", SHA, "pending", "hamster/ci", "q", None)
    client.for_installation(202).create_status("widgets/two", SHA, "pending", "hamster/ci", "q", None)
    limits = client.rate_limits()
    assert set(limits) == {101, 202}
    assert limits[101][0] == 5000 - fake.rate_used["installation:101"]
    assert limits[202][0] == 5000 - fake.rate_used["installation:202"]
    assert limits[101][0] < limits[202][0]
