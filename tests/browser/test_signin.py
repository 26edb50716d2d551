"""Signing in with GitHub in a real browser: Chromium goes from the runs page to the sign-in page, through
the fake GitHub's OAuth pages and back, and sees the runs page; a form posted without the session's CSRF
token is refused. Real `hamster web` and `hamster worker` processes, the real broker."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from hamster import ids
from tests.browser.chromium import ARTIFACTS, base
from tests.fakegithub import FakeGitHub
from tests.integration.system import System
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.oauth.add_user("octocat", orgs=("acme",))
        server.oauth.add_user("mallory")
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake: FakeGitHub) -> Iterator[System]:
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("signin"), "tests.pipelines.catalog")
    client_id, secret = fake.oauth.register(f"{base(hamster)}/signin/github/callback")
    hamster.env.update(
        HAMSTER_GITHUB_OAUTH_CLIENT_ID=client_id,
        HAMSTER_GITHUB_OAUTH_CLIENT_SECRET=secret,
        HAMSTER_GITHUB_WEB_URL=fake.url,
        HAMSTER_GITHUB_API_URL=fake.url,
        HAMSTER_GITHUB_OAUTH_ORG="acme",
        HAMSTER_GITHUB_OAUTH_OPERATORS="octocat",
    )
    with hamster.running({"three-stage"}):
        yield hamster


def sign_in_with_github(page: Page, system: System, fake: FakeGitHub, login: str) -> None:
    page.goto(f"{base(system)}/runs")
    expect(page).to_have_url(f"{base(system)}/signin?next=%2Fruns")
    page.click("#signin-github")
    expect(page).to_have_url(re.compile(re.escape(f"{fake.url}/login/oauth/authorize?") + ".*"))
    page.fill("#login_field", login)
    page.click("#js-oauth-authorize-btn")


def test_signing_in_with_github_shows_the_runs_page(system: System, fake: FakeGitHub, page: Page):
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), "acme/three")
    )
    assert status == 202
    sign_in_with_github(page, system, fake, "octocat")
    expect(page).to_have_url(f"{base(system)}/runs")
    expect(page.locator("h1")).to_have_text("Runs")
    expect(page.locator("#signed-in")).to_have_text("octocat (operate)")
    run_id = ids.run_id(delivery, "three-stage")
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_have_count(1, timeout=120_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signed-in.png"), full_page=True)
    # The session cookie is out of the page's reach.
    assert page.evaluate("document.cookie") == ""

    # A form posted to the dashboard without the session's CSRF token (as another site's would be) is
    # refused, though the browser sends the cookie along; the page's own Sign out form carries it.
    page.evaluate(
        """() => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = "/api/subscribers/three-stage/disable";
            document.body.appendChild(form);
            form.submit();
        }"""
    )
    expect(page.locator("body")).to_contain_text("missing or wrong CSRF token")
    page.goto(f"{base(system)}/subscribers")
    expect(page.locator('tr[data-subscriber="three-stage"]')).to_have_attribute("data-enabled", "yes")
    page.click("text=Sign out")
    expect(page).to_have_url(f"{base(system)}/signin")
    page.goto(f"{base(system)}/runs")
    expect(page).to_have_url(f"{base(system)}/signin?next=%2Fruns")


def test_someone_outside_the_organization_is_not_let_in(system: System, fake: FakeGitHub, page: Page):
    sign_in_with_github(page, system, fake, "mallory")
    expect(page.locator("#signin-error")).to_contain_text("mallory is not an active member of acme")
    page.goto(f"{base(system)}/runs")
    expect(page).to_have_url(f"{base(system)}/signin?next=%2Fruns")
