"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against real `hamster web` and
`hamster worker` processes on the real broker. A screenshot of each page is kept under tests/artifacts/.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from hamster import ids
from tests.browser.chromium import ARTIFACTS, base
from tests.browser.signing import sign_in
from tests.integration.system import READER_TOKEN, System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

TOKEN = "browser-test-token"  # HAMSTER_API_TOKEN: the operate role
SUBSCRIBERS = {"three-stage", "fails", "twin-a", "twin-b", "toggle", "toggle-witness", "bad-output"}
WAIT_MS = 120_000  # the runs page refreshes itself; a run on a 2-core machine may take a while to appear


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory) -> Iterator[System]:
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("dashboard"), "tests.pipelines.catalog")
    hamster.env["HAMSTER_API_TOKEN"] = TOKEN
    with hamster.running(SUBSCRIBERS):
        yield hamster


def pull_request(repo: str) -> dict[str, Any]:
    return with_repo(load("pull_request", "opened.payload.json"), repo)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_webhook_to_runs_page_to_run_page(system: System, page: Page):
    """A webhook sent → its run appears on the open runs page by itself → its page shows every stage;
    the replay button (signed in with the operate token) starts a rerun that runs to the end."""
    sign_in(page, base(system), READER_TOKEN)
    expect(page.locator("h1")).to_have_text("Runs")
    status, delivery = system.post("pull_request", pull_request("acme/three"))
    assert status == 202
    _, failing = system.post("pull_request", pull_request("acme/fails"))
    run_id = ids.run_id(delivery, "three-stage")
    # No reload: the page's own refresh brings the row, then its final status.
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)
    failed_row = page.locator(f'tr[data-run-id="{ids.run_id(failing, "fails")}"]')
    expect(failed_row).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
    screenshot(page, "runs")

    row.get_by_role("link").click()
    expect(page).to_have_url(f"{base(system)}/runs/{run_id}")
    stages = page.locator("#stages tbody tr")
    expect(stages).to_have_count(3)
    for name in ("first", "second", "third"):
        expect(page.locator(f'#stages tr[data-stage="{name}"]')).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator(".timeline .bar")).to_have_count(3)
    pr_number = pull_request("acme/three")["number"]
    expect(page.locator("#github-link")).to_have_attribute(
        "href", f"https://github.com/acme/three/pull/{pr_number}"
    )
    screenshot(page, "run")

    page.goto(f"{base(system)}/runs/{ids.run_id(failing, 'fails')}")
    expect(page.locator('#stages tr[data-stage="boom"]')).to_have_attribute("data-status", "failed")
    expect(page.locator('#stages tr[data-stage="boom"] .error')).to_contain_text("stage two exploded")
    screenshot(page, "run-failed")

    page.goto(f"{base(system)}/runs/{run_id}")
    expect(page.locator("#replay")).to_have_count(0)  # a reader has no replay button
    page.click("text=Sign out")
    sign_in(page, base(system), TOKEN, then=f"/runs/{run_id}")
    page.click("#replay")
    expect(page.locator("#notice")).to_contain_text("done: ", timeout=60_000)
    rerun = json.loads(page.locator("#notice").inner_text().removeprefix("done: "))
    assert rerun["original_run_id"] == run_id and rerun["attempt"] == 2
    # A run's page exists once the projection has the run; from then on it reloads itself until the end.
    wait_until(lambda: any(r["run_id"] == rerun["run_id"] for r in system.runs()), 90, what="the rerun")
    page.goto(f"{base(system)}/runs/{rerun['run_id']}")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=WAIT_MS)

    page.goto(f"{base(system)}/runs?status=failed")
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_have_count(0)
    expect(failed_row).to_have_count(1)


def test_subscribers_page_disables_and_enables_with_the_token(system: System, page: Page):
    """Signed in with the operate token, the subscribers page turns a subscriber off and on; a reader
    sees no buttons, and a POST carrying the session but not its CSRF token is refused."""
    sign_in(page, base(system), READER_TOKEN, then="/subscribers")
    toggle = page.locator('tr[data-subscriber="toggle"]')
    expect(toggle).to_have_attribute("data-enabled", "yes")
    expect(toggle.get_by_role("button")).to_have_count(0)
    page.click("text=Sign out")

    sign_in(page, base(system), TOKEN, then="/subscribers")
    screenshot(page, "subscribers")
    # The page's own requests send the session's CSRF token; one sent without it (as another site's
    # form would be) is refused, though the browser attaches the session cookie.
    refused = page.evaluate("fetch('/api/subscribers/toggle/disable', {method: 'POST'}).then(a => a.status)")
    assert refused == 403
    expect(toggle).to_have_attribute("data-enabled", "yes")

    toggle.get_by_role("button", name="disable").click()
    expect(toggle).to_have_attribute("data-enabled", "no", timeout=30_000)
    wait_until(
        lambda: system.worker_view("worker-1")["toggle"]["enabled"] is False, 60, what="worker sees it"
    )
    toggle.get_by_role("button", name="enable").click()  # the session stays signed in
    expect(toggle).to_have_attribute("data-enabled", "yes", timeout=30_000)


def get_text(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    raise AssertionError(f"no {name}{{{wanted}}} in the scrape")


def test_metrics_and_faust_web_on_the_real_processes(system: System):
    """The intake and worker serve Prometheus text with Hamster's metrics beside Faust's; /table/ is off."""
    status, delivery = system.post("pull_request", pull_request("acme/three"))
    assert status == 202
    system.wait_finished(delivery)
    status, intake = get_text(f"{base(system)}/metrics")
    assert status == 200
    assert metric(intake, "hamster_webhooks_received_total", event="pull_request") >= 1
    assert metric(intake, "hamster_intake_latency_seconds_count") >= 1

    worker = f"http://127.0.0.1:{system.worker_ports['worker-1']}"
    # The projection can be ahead of the worker's scrape by nothing: both count once the record is acked.
    status, scraped = get_text(f"{worker}/metrics")
    assert status == 200
    assert metric(scraped, "hamster_runs_started_total", subscriber="three-stage") >= 1
    assert metric(scraped, "hamster_runs_finished_total", subscriber="three-stage", status="succeeded") >= 1
    assert metric(scraped, "hamster_stage_duration_seconds_count", task="first") >= 1
    assert "faust_messages_received" in scraped
    wait_until(lambda: "hamster_consumer_lag{" in get_text(f"{worker}/metrics")[1], 60, what="lag gauges")

    assert get_text(f"{worker}/")[0] == 200  # Faust's stats
    assert json.loads(get_text(f"{worker}/assignment/")[1]) is not None
    assert get_text(f"{worker}/table/deliveries/")[0] == 404
