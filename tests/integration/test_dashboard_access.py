"""Every route of the real `hamster web` needs a login: enumerated from the router `hamster web` builds, so
a route added later is covered without touching this test.

Without a login: 401 with a Bearer challenge for /api/* and for changes, a redirect to /signin for
pages. With a read token: reading works, changing (and the dead letters) is 403. With an operate token:
everything works. Signing in with a token through the sign-in form gives a session cookie; a POST on
that session without its CSRF token is refused.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from hamster import ids
from hamster.cli.web import build_app
from hamster.settings import load_settings
from tests.integration.system import HAMSTER, OPERATOR_TOKEN, READER_TOKEN, System, free_port, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

# Served to anyone: GitHub's deliveries, the probes, and the way in.
OPEN = {
    ("POST", "/webhooks/github"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("POST", "/signout"),
}
READS_FOR_OPERATORS = {"/api/dead-letters"}  # a dead letter holds a record's original bytes


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory) -> Iterator[System]:
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("access"), "tests.pipelines.catalog")
    with hamster.running({"three-stage"}):
        yield hamster


@pytest.fixture(scope="module")
def run_id(system: System) -> str:
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), "acme/three")
    )
    assert status == 202
    [run] = [r for r in system.wait_finished(delivery) if r["subscriber"] == "three-stage"]
    assert run["run_id"] == ids.run_id(delivery, "three-stage")
    return str(run["run_id"])


def routes(system: System) -> list[tuple[str, str]]:
    """(method, canonical path) of every route the `hamster web` of ``system`` serves."""
    settings = load_settings(
        **{
            name.removeprefix("HAMSTER_").lower(): value
            for name, value in system.env.items()
            if name.startswith("HAMSTER_") and not name.startswith("HAMSTER_TEST")
        }
    )
    app = build_app(settings)
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        found.add((route.method, route.resource.canonical))
    return sorted(found)


def fill(method: str, path: str, run_id: str) -> str:
    """A concrete URL for a route: a real run for reading; for changing, names that do not exist, so the
    answer shows the request got past the login without changing anything."""
    values = {
        "run_id": run_id if method == "GET" else "no-such-run",
        "name": "no-such-artifact.txt" if method == "GET" else "no-such-subscriber",
        "stage": "first",
        "number": "999999999",
        "verb": "approve" if "/stages/" in path else "enable",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def request(
    system: System, method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, str]:
    data = b"{}" if method == "POST" else None
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    opener = urllib.request.build_opener(NoRedirects)
    req = urllib.request.Request(system.base + path, data=data, method=method, headers=sent)
    try:
        with opener.open(req, timeout=60) as answer:
            return answer.status, answer.headers, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode(errors="replace")
    except urllib.error.URLError:  # nothing listens (yet)
        return 0, {}, ""


def guarded(system: System) -> list[tuple[str, str]]:
    listed = routes(system)
    assert ("GET", "/runs") in listed and ("POST", "/api/trigger") in listed  # the router was read
    return [route for route in listed if route not in OPEN and route[1] != "/"]


def test_without_a_login_every_route_is_refused(system: System, run_id: str):
    """API routes and changes: 401 with a Bearer challenge; pages: 303 to /signin?next=<the page>."""
    for method, path in [*guarded(system), ("GET", "/")]:
        url = fill(method, path, run_id)
        status, headers, _ = request(system, method, url)
        if path.startswith("/api/") or method != "GET":
            assert status == 401, (method, url, status)
            assert headers["WWW-Authenticate"].startswith('Bearer realm="hamster"'), url
        else:
            assert status == 303, (method, url, status)
            assert headers["Location"] == "/signin?next=" + urllib.parse.quote(url, safe=""), url
        assert headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert headers["X-Frame-Options"] == "DENY"
    # A wrong token is refused too, even on a page.
    assert request(system, "GET", "/runs", token="not-a-token")[0] == 401


def test_a_read_token_reads_and_may_not_change(system: System, run_id: str):
    for method, path in guarded(system):
        url = fill(method, path, run_id)
        status, _, text = request(system, method, url, READER_TOKEN)
        if method == "GET" and path not in READS_FOR_OPERATORS:
            assert status not in (401, 403) and status < 500, (url, status, text)
            if "{name}" not in path:
                assert status == 200, (url, status, text)
        else:
            assert status == 403, (method, url, status)
            assert "has the read role" in text


def test_an_operate_token_gets_past_every_login(system: System, run_id: str):
    """Changes with names that do not exist: the answer is the route's own (404/400), not a refusal."""
    for method, path in guarded(system):
        url = fill(method, path, run_id)
        status, _, text = request(system, method, url, OPERATOR_TOKEN)
        assert status not in (401, 403) and status < 500, (method, url, status, text)
        if method == "POST":
            assert status in (400, 404), (method, url, status, text)
    listed = json.loads(request(system, "GET", "/api/runs", OPERATOR_TOKEN)[2])
    assert run_id in {r["run_id"] for r in listed}


def test_signing_in_with_a_token_gives_a_session_that_needs_its_csrf_token(system: System, run_id: str):
    """The sign-in form (its own CSRF token) → an HttpOnly SameSite=Lax cookie → pages and API work on
    it; a POST on the cookie without the CSRF token is 403, with it the route's own answer."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirects)

    def call(
        method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, Any, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(system.base + path, data=data, method=method, headers=headers)
        try:
            with browser.open(req, timeout=30) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read().decode()

    status, _, page = call("GET", "/signin?next=/subscribers")
    assert status == 200
    signin_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert signin_csrf is not None
    refused = call("POST", "/signin", {"token": OPERATOR_TOKEN, "next": "/subscribers"})
    assert refused[0] == 403  # no CSRF token: a login planted by another site is refused
    status, headers, _ = call(
        "POST",
        "/signin",
        {"token": OPERATOR_TOKEN, "next": "/subscribers", "csrf_token": signin_csrf.group(1)},
    )
    assert status == 303 and headers["Location"] == "/subscribers"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    status, _, page = call("GET", "/subscribers")
    assert status == 200 and "operator (operate)" in page
    csrf = re.search(r"const csrfToken = \"([^\"]+)\"", page)
    assert csrf is not None and csrf.group(1) != signin_csrf.group(1)  # a new session on signing in
    assert call("POST", "/api/subscribers/no-such-subscriber/enable")[0] == 403
    assert call("POST", "/api/subscribers/no-such-subscriber/enable", **{"X-CSRF-Token": "forged"})[0] == 403
    assert (
        call("POST", "/api/subscribers/no-such-subscriber/enable", **{"X-CSRF-Token": csrf.group(1)})[0]
        == 404
    )
    # A tampered cookie is no session at all.
    for item in jar:
        item.value = item.value[:-2] + ("AA" if not item.value.endswith("AA") else "BB")
    assert call("GET", "/subscribers")[0] == 303


def test_the_dashboard_only_port_serves_no_intake_and_needs_no_webhook_secret(system: System):
    """`--dashboard-only` starts without a webhook secret, serves the dashboard behind its logins and
    /healthz, and no webhook intake; both flags at once are refused."""
    env = {name: value for name, value in system.env.items() if name != "HAMSTER_WEBHOOK_SECRET"}
    port = free_port()
    with open(system.home / "dashboard-only.log", "wb") as out:
        process = subprocess.Popen(
            [*HAMSTER, "web", "--dashboard-only", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        board = System.__new__(System)
        board.intake_port = port
        wait_until(lambda: request(board, "GET", "/healthz")[0] == 200, 60, what="the dashboard")
        assert request(board, "GET", "/runs")[0] == 303
        assert request(board, "GET", "/runs", READER_TOKEN)[0] == 200
        assert request(board, "POST", "/webhooks/github")[0] in (401, 404)  # no such route: nothing stored
        assert request(board, "POST", "/webhooks/github", OPERATOR_TOKEN)[0] == 404
        assert request(board, "GET", "/readyz", READER_TOKEN)[0] == 404
    finally:
        process.terminate()
        process.wait(timeout=30)
    both = subprocess.run(
        [*HAMSTER, "web", "--dashboard-only", "--intake-only"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert both.returncode == 2 and "exclude each other" in both.stderr
