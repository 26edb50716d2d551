"""Signing in with GitHub, over real HTTP between the dashboard, a client keeping cookies as a browser does,
and the strict fake GitHub: the OAuth web flow with its state check, allowlists, an organization, roles,
and what GitHub refuses (a code used twice or expired, a wrong client secret, an expired token)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hamster.credentials import ApiToken
from hamster.dashboard import Access, Dashboard, mount
from hamster.dashboard.github_signin import GitHubSignIn
from hamster.projection.sql import make_engine
from tests.contract.fake_subscribers import FakeSubscribers
from tests.fakegithub import FakeGitHub
from tests.integration.system import free_port


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.oauth.add_user("octocat", orgs=("acme",))
        server.oauth.add_user("hubot", orgs=("acme",))
        server.oauth.add_user("mallory")
        yield server


@dataclass
class Dash:
    base: str
    fake: FakeGitHub
    client_id: str
    client_secret: str


def signin_for(fake: FakeGitHub, base: str, **more: object) -> tuple[GitHubSignIn, str, str]:
    client_id, secret = fake.oauth.register(f"{base}/signin/github/callback")
    fields: dict[str, object] = {
        "org": None,
        "users": frozenset(),
        "operators": frozenset({"hubot"}),
        "role": "read",
    } | more
    return GitHubSignIn(client_id, secret, fake.url, fake.url, **fields), client_id, secret  # type: ignore[arg-type]


async def serve(
    tmp_path, fake: FakeGitHub, cookie_secure: str = "auto", **signin: object
) -> AsyncIterator[Dash]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    github, client_id, secret = signin_for(fake, base, **signin)
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    subscribers = FakeSubscribers()
    access = Access(
        tokens=(ApiToken("ops", "operate", "ops-token-0123456789"),),
        github=github,
        cookie_secure=cookie_secure,
    )
    app = web.Application()
    mount(app, Dashboard(engine, subscribers.list, subscribers.set_enabled, access=access))
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Dash(base, fake, client_id, secret)
    finally:
        await server.close()
        engine.dispose()


@pytest.fixture
async def dash(tmp_path, fake) -> AsyncIterator[Dash]:
    async for found in serve(tmp_path, fake):
        yield found


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1 too


async def through_github(http: aiohttp.ClientSession, dash: Dash, login: str, next_: str = "/runs") -> str:
    """Start at /signin/github, sign in on the fake's page as ``login``: the callback URL it sends back to."""
    async with http.get(f"{dash.base}/signin/github", params={"next": next_}, allow_redirects=False) as start:
        assert start.status == 303
        authorize = start.headers["Location"]
    assert authorize.startswith(f"{dash.fake.url}/login/oauth/authorize?")
    async with http.get(authorize) as page:
        assert page.status == 200
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', await page.text()))
    async with http.post(
        f"{dash.fake.url}/login/oauth/authorize", data=form | {"login": login}, allow_redirects=False
    ) as authorized:
        assert authorized.status == 302
        return authorized.headers["Location"]


async def back(http: aiohttp.ClientSession, callback: str) -> tuple[int, str, str]:
    """Follow GitHub's redirect to the callback: (status, Location, page text)."""
    async with http.get(callback, allow_redirects=False) as answer:
        return answer.status, answer.headers.get("Location", ""), await answer.text()


async def test_a_member_signs_in_and_reads_an_operator_gets_the_operate_role(dash: Dash):
    async with browser() as http:
        callback = await through_github(http, dash, "octocat", "/subscribers")
        query = parse_qs(urlsplit(callback).query)
        assert (
            callback.startswith(f"{dash.base}/signin/github/callback?") and query["code"] and query["state"]
        )
        status, location, _ = await back(http, callback)
        assert (status, location) == (303, "/subscribers")
        async with http.get(f"{dash.base}/subscribers") as page:
            assert page.status == 200 and "octocat (read)" in await page.text()
        async with http.post(f"{dash.base}/api/subscribers/ci/disable") as change:
            assert change.status == 403
    async with browser() as http:
        await back(http, await through_github(http, dash, "hubot"))
        async with http.get(f"{dash.base}/runs") as page:
            assert "hubot (operate)" in await page.text()


async def test_a_callback_without_the_sessions_state_is_refused(dash: Dash):
    """The state must be the one this browser's session was sent off with (login CSRF)."""
    async with browser() as http:
        callback = await through_github(http, dash, "octocat")
    async with browser() as other:  # another browser, handed the callback URL
        status, _, text = await back(other, callback)
        assert status == 400 and "without its state" in text
        async with other.get(f"{dash.base}/runs", allow_redirects=False) as page:
            assert page.status == 303
    async with browser() as http:
        callback = await through_github(http, dash, "octocat")
        forged = re.sub(r"state=[^&]+", "state=forged", callback)
        assert (await back(http, forged))[0] == 400


async def test_the_fake_refuses_what_github_refuses(dash: Dash):
    """A code is single-use and bound to its client and redirect_uri; a wrong secret is refused; answers
    are 200 with an error, as GitHub's are."""
    async with browser() as http:
        callback = await through_github(http, dash, "octocat")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    exchange = f"{dash.fake.url}/login/oauth/access_token"
    form = {"client_id": dash.client_id, "client_secret": dash.client_secret, "code": code}
    headers = {"Accept": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(exchange, data=form | {"client_secret": "wrong"}, headers=headers) as answer:
            assert answer.status == 200
            assert (await answer.json())["error"] == "incorrect_client_credentials"
        async with http.post(
            exchange, data=form | {"redirect_uri": "http://evil.example/cb"}, headers=headers
        ) as answer:
            assert (await answer.json())["error"] == "redirect_uri_mismatch"
        async with http.post(exchange, data=form, headers=headers) as answer:
            assert (await answer.json())["error"] == "bad_verification_code"  # spent by the refusal above
        async with http.get(f"{dash.fake.url}/user", headers={"Authorization": "Bearer gho_unknown"}) as user:
            assert user.status == 401 and (await user.json())["message"] == "Bad credentials"


async def test_a_used_or_expired_code_and_an_expired_token_sign_nobody_in(dash: Dash):
    async with browser() as http:
        callback = await through_github(http, dash, "octocat")
        async with aiohttp.ClientSession() as thief:  # the code spent before the browser comes back
            code = parse_qs(urlsplit(callback).query)["code"][0]
            form = {"client_id": dash.client_id, "client_secret": dash.client_secret, "code": code}
            await (await thief.post(f"{dash.fake.url}/login/oauth/access_token", data=form)).read()
        status, _, text = await back(http, callback)
        assert status == 403 and "GitHub refused the sign-in code" in text
    dash.fake.oauth.code_lifetime_s = 0
    try:
        async with browser() as http:
            status, _, text = await back(http, await through_github(http, dash, "octocat"))
            assert status == 403 and "incorrect or expired" in text
    finally:
        dash.fake.oauth.code_lifetime_s = 600
    dash.fake.oauth.token_lifetime_s = 0
    try:
        async with browser() as http:
            status, _, text = await back(http, await through_github(http, dash, "octocat"))
            assert status == 403 and "GitHub answered 401 to GET /user" in text
    finally:
        dash.fake.oauth.token_lifetime_s = 8 * 3600


async def test_allowlists_and_an_organization_keep_others_out(tmp_path, fake: FakeGitHub):
    async for dash in serve(tmp_path, fake, users=frozenset({"octocat"})):
        async with browser() as http:
            status, _, text = await back(http, await through_github(http, dash, "mallory"))
            assert status == 403 and "mallory is not among the users allowed" in text
            async with http.get(f"{dash.base}/runs", allow_redirects=False) as page:
                assert page.status == 303
        async with browser() as http:
            assert (await back(http, await through_github(http, dash, "octocat")))[0] == 303
    async for dash in serve(tmp_path, fake, org="acme"):
        async with browser() as http:
            status, _, text = await back(http, await through_github(http, dash, "mallory"))
            assert status == 403 and "not an active member of acme" in text
        async with browser() as http:
            assert (await back(http, await through_github(http, dash, "octocat")))[0] == 303


async def test_cookies_are_secure_when_asked_and_next_stays_on_the_site(tmp_path, fake: FakeGitHub):
    async for dash in serve(tmp_path, fake, cookie_secure="always"):
        async with browser() as http, http.get(f"{dash.base}/signin/github", allow_redirects=False) as start:
            cookie = start.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    async for dash in serve(tmp_path, fake):
        for hostile in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            async with browser() as http:
                callback = await through_github(http, dash, "octocat", hostile)
                assert (await back(http, callback))[:2] == (303, "/runs")
