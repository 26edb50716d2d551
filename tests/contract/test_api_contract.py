"""The dashboard's JSON API and pages over real HTTP, on sqlite and on PostgreSQL alike."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hamster.credentials import ApiToken
from hamster.dashboard import Access, Dashboard, mount
from hamster.errors import ConfigurationError, UnknownDeadLetter
from hamster.projection.sql import apply_batch
from tests.contract.fake_subscribers import FakeSubscribers
from tests.contract.records import batch, run_records

TOKEN = "s3cret-operate-token"
READER = "s3cret-reader-token"


@pytest.fixture
def subscribers():
    return FakeSubscribers()


@pytest.fixture
def runs(engine):
    """Two runs in the projection: one succeeded on acme/app, one failed on acme/lib."""
    ok_id, ok = run_records("d-ok", repo="acme/app")
    bad_id, bad = run_records("d-bad", repo="acme/lib", outcome="failed", pr_number=None)
    apply_batch(engine, "t.run-events", batch(ok) + batch(bad, partition=1))
    return {"ok": ok_id, "bad": bad_id}


async def client_for(engine, subscribers, token=None, replay=None, **more):
    """A client of the dashboard that reads with a read token (sent by default); ``token``: an operate
    token is configured too."""
    tokens = (ApiToken("reader", "read", READER),)
    if token:
        tokens += (ApiToken("ops", "operate", token),)
    app = web.Application()
    board = Dashboard(
        engine, subscribers.list, subscribers.set_enabled, access=Access(tokens=tokens), replay=replay, **more
    )
    mount(app, board)
    client = TestClient(TestServer(app, host="127.0.0.1"), headers={"Authorization": f"Bearer {READER}"})
    await client.start_server()
    return client


async def anonymous(client, method, path, **kwargs):
    """(status, headers) of a request with no credentials at all."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, client.make_url(path), allow_redirects=False, **kwargs) as answer,
    ):
        return answer.status, answer.headers


async def test_api_lists_runs_with_filters(engine, subscribers, runs):
    """GET /api/runs returns the projection's runs, filtered by repo, subscriber and status."""
    client = await client_for(engine, subscribers)
    try:
        everything = await (await client.get("/api/runs")).json()
        assert {r["run_id"] for r in everything} == set(runs.values())
        failed = await (await client.get("/api/runs", params={"status": "failed"})).json()
        assert [r["run_id"] for r in failed] == [runs["bad"]]
        app_runs = await (
            await client.get("/api/runs", params={"repo": "acme/app", "subscriber": "ci"})
        ).json()
        assert [r["run_id"] for r in app_runs] == [runs["ok"]]
        assert (await client.get("/api/runs", params={"status": "bogus"})).status == 400
    finally:
        await client.close()


async def test_api_shows_one_run_and_404s_an_unknown_one(engine, subscribers, runs):
    """GET /api/runs/{id} returns the run with its stages; an unknown id is a 404."""
    client = await client_for(engine, subscribers)
    try:
        run = await (await client.get(f"/api/runs/{runs['bad']}")).json()
        assert [(s["name"], s["status"]) for s in run["stages"]] == [
            ("lint", "succeeded"),
            ("test", "failed"),
        ]
        assert (await client.get("/api/runs/nope")).status == 404
    finally:
        await client.close()


async def test_pages_render_runs_stages_and_github_link(engine, subscribers, runs):
    """The runs page lists both runs; a run page shows each stage, its error, log tail and GitHub link."""
    client = await client_for(engine, subscribers)
    try:
        page = await (await client.get("/runs", params={"repo": "acme/lib"})).text()
        assert runs["bad"] in page and runs["ok"] not in page
        rows = await (await client.get("/runs", params={"partial": "rows"})).text()
        assert "<html" not in rows and runs["ok"] in rows
        run_page = await (await client.get(f"/runs/{runs['ok']}")).text()
        assert 'data-stage="lint" data-status="succeeded"' in run_page
        assert "https://github.com/acme/app/pull/7" in run_page
        assert "all clean" in run_page  # the tail of lint's log
        failed_page = await (await client.get(f"/runs/{runs['bad']}")).text()
        assert (
            "3 tests failed" in failed_page
            and f"https://github.com/acme/lib/commit/{'a' * 40}" in failed_page
        )
        assert (await client.get("/runs/nope")).status == 404
    finally:
        await client.close()


async def test_subscribers_api_and_page_are_read_only_without_a_token(engine, subscribers):
    """With no operate token configured, subscribers can be read but the changing endpoints do not exist."""
    client = await client_for(engine, subscribers)
    try:
        listed = await (await client.get("/api/subscribers")).json()
        assert [(s["spec"]["name"], s["enabled"]) for s in listed] == [("ci", True)]
        page = await (await client.get("/subscribers")).text()
        assert "Read-only" in page and "<button" not in page
        assert "<title>Subscribers · Hamster CI</title>" in page
        answer = await client.post("/api/subscribers/ci/disable")
        assert answer.status in (404, 405)
        assert subscribers.changes == []
    finally:
        await client.close()


async def test_changing_a_subscriber_needs_the_bearer_token(engine, subscribers):
    """Missing or wrong bearer tokens get 401, a read token 403, and change nothing; the operate token
    publishes the change."""
    client = await client_for(engine, subscribers, token=TOKEN)
    try:
        status, headers = await anonymous(client, "POST", "/api/subscribers/ci/disable")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert (await client.post("/api/subscribers/ci/disable")).status == 403
        wrong = await client.post("/api/subscribers/ci/disable", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert subscribers.changes == []
        auth = {"Authorization": f"Bearer {TOKEN}"}
        done = await client.post("/api/subscribers/ci/disable", headers=auth)
        assert done.status == 202 and (await done.json())["enabled"] is False
        assert (await client.post("/api/subscribers/ghost/enable", headers=auth)).status == 404
        assert subscribers.changes == [("ci", False)]
        assert "<button" not in await (await client.get("/subscribers")).text()  # a reader's page
        assert "<button" in await (await client.get("/subscribers", headers=auth)).text()
    finally:
        await client.close()


async def test_replay_needs_the_token_and_a_known_run(engine, subscribers, runs):
    """POST /api/runs/{id}/replay: 401 without the token, 404 for an unknown run, 409 when it cannot."""
    asked: list[str] = []

    async def replay(run_id: str) -> dict:
        asked.append(run_id)
        if run_id == runs["bad"]:
            raise ConfigurationError("the webhook is no longer in the events topic")
        return {"run_id": "new-run", "original_run_id": run_id, "attempt": 2}

    client = await client_for(engine, subscribers, token=TOKEN, replay=replay)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        assert (await anonymous(client, "POST", f"/api/runs/{runs['ok']}/replay"))[0] == 401
        assert (await client.post(f"/api/runs/{runs['ok']}/replay")).status == 403
        assert asked == []
        done = await client.post(f"/api/runs/{runs['ok']}/replay", headers=auth)
        assert done.status == 202 and (await done.json())["original_run_id"] == runs["ok"]
        assert (await client.post("/api/runs/nope/replay", headers=auth)).status == 404
        refused = await client.post(f"/api/runs/{runs['bad']}/replay", headers=auth)
        assert refused.status == 409 and "no longer" in await refused.text()
        assert asked == [runs["ok"], runs["bad"]]
        assert 'id="replay"' not in await (await client.get(f"/runs/{runs['ok']}")).text()  # a reader
        assert 'id="replay"' in await (await client.get(f"/runs/{runs['ok']}", headers=auth)).text()
    finally:
        await client.close()


async def test_no_replay_button_without_a_token(engine, subscribers, runs):
    """Without a token the run page has no replay button and the endpoint does not exist."""

    async def replay(run_id: str) -> dict:
        raise AssertionError("must not be called")

    client = await client_for(engine, subscribers, replay=replay)
    try:
        assert 'id="replay"' not in await (await client.get(f"/runs/{runs['ok']}")).text()
        assert (await client.post(f"/api/runs/{runs['ok']}/replay")).status in (404, 405)
    finally:
        await client.close()


class FakeDeadLetters:
    """The dead letters as the dashboard reads and replays them, recording every replay asked for."""

    def __init__(self) -> None:
        self.letters = [{"number": 3, "agent": "match", "source_topic": "t.events", "value_b64": "/w=="}]
        self.replayed: list[int] = []

    async def list(self) -> list[dict]:
        return list(self.letters)

    async def replay(self, number: int) -> dict:
        if number not in {letter["number"] for letter in self.letters}:
            raise UnknownDeadLetter([number])
        self.replayed.append(number)
        return {"number": number, "topic": "t.events", "partition": 1, "offset": 42}


async def test_dead_letters_need_the_token(engine, subscribers):
    """GET /api/dead-letters and POST /api/dead-letters/{n}/replay: 401 without or with a wrong token
    (reading too: a dead letter holds the original bytes); 404 for an unknown number, 400 for a non-number."""
    letters = FakeDeadLetters()
    client = await client_for(
        engine, subscribers, token=TOKEN, list_dead_letters=letters.list, replay_dead_letter=letters.replay
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            status, answer = await anonymous(client, "GET", "/api/dead-letters", headers=headers)
            assert status == 401 and answer["WWW-Authenticate"].startswith("Bearer")
            status, answer = await anonymous(client, "POST", "/api/dead-letters/3/replay", headers=headers)
            assert status == 401 and answer["WWW-Authenticate"].startswith("Bearer")
        # a read token may not read them either: a dead letter holds the original bytes
        assert (await client.get("/api/dead-letters")).status == 403
        assert (await client.post("/api/dead-letters/3/replay")).status == 403
        assert letters.replayed == []
        assert await (await client.get("/api/dead-letters", headers=auth)).json() == letters.letters
        done = await client.post("/api/dead-letters/3/replay", headers=auth)
        assert done.status == 202
        assert await done.json() == {"number": 3, "topic": "t.events", "partition": 1, "offset": 42}
        unknown = await client.post("/api/dead-letters/999/replay", headers=auth)
        assert unknown.status == 404 and "no dead letter numbered 999" in await unknown.text()
        assert (await client.post("/api/dead-letters/three/replay", headers=auth)).status == 400
        assert letters.replayed == [3]
    finally:
        await client.close()


async def test_no_dead_letter_endpoints_without_a_token(engine, subscribers):
    """Without an operate token configured neither dead-letter endpoint exists, not even for reading: 404."""

    async def replay(number: int) -> dict:
        raise AssertionError("must not be called")

    async def listing() -> list[dict]:
        raise AssertionError("must not be called")

    client = await client_for(engine, subscribers, list_dead_letters=listing, replay_dead_letter=replay)
    try:
        assert (await client.get("/api/dead-letters")).status == 404
        assert (await client.post("/api/dead-letters/3/replay")).status == 404
    finally:
        await client.close()


async def test_public_mode_lets_anyone_read_and_nobody_change_without_operate(engine, subscribers, runs):
    """HAMSTER_DASHBOARD_PUBLIC=true: pages and GET /api/* need no login; changing still needs operate."""
    app = web.Application()
    access = Access(tokens=(ApiToken("ops", "operate", TOKEN),), public=True)
    mount(app, Dashboard(engine, subscribers.list, subscribers.set_enabled, access=access))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        assert {r["run_id"] for r in await (await client.get("/api/runs")).json()} == set(runs.values())
        page = await client.get("/runs")
        assert page.status == 200 and 'href="/signin"' in await page.text()
        assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert (await client.post("/api/subscribers/ci/disable")).status == 401
        assert (await client.get("/api/runs", headers={"Authorization": "Bearer nope"})).status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.post("/api/subscribers/ci/disable", headers=auth)).status == 202
    finally:
        await client.close()


async def test_api_and_page_are_paged_by_cursor(engine, subscribers):
    """GET /api/runs?limit=N names the next page in a Link header until the last; following it visits
    every run once; the runs page links "Older runs" the same way; a forged cursor is a 400."""
    from datetime import timedelta

    from tests.contract.records import T0

    offset = 0
    for n in range(7):
        _, records = run_records(f"d-{n}", start=T0 + timedelta(minutes=n))
        apply_batch(engine, "t.run-events", batch(records, first_offset=offset))
        offset += len(records)
    client = await client_for(engine, subscribers)
    try:
        seen, url = [], "/api/runs?limit=3"
        while url:
            answer = await client.get(url)
            assert answer.status == 200
            seen += [r["delivery_id"] for r in await answer.json()]
            link = answer.headers.get("Link")
            url = link[1 : link.index(">")] if link else None
            assert link is None or link.endswith('>; rel="next"')
        assert seen == [f"d-{n}" for n in reversed(range(7))]
        page = await (await client.get("/runs", params={"limit": "3"})).text()
        assert 'id="older"' in page and "cursor=" in page
        last = await (await client.get("/runs", params={"limit": "10"})).text()
        assert 'id="older"' not in last
        assert (await client.get("/api/runs", params={"cursor": "forged"})).status == 400
    finally:
        await client.close()
