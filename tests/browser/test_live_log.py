"""The run page's live log in a real browser (Chromium via Playwright) against real `hamster web` and
`hamster worker` processes on the real broker. Its screenshot goes to tests/artifacts/; with
HAMSTER_DOCS_SCREENSHOTS=1 it also becomes the README's (docs/live-log.png)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from hamster import ids
from tests.browser.chromium import ARTIFACTS, base
from tests.browser.signing import sign_in
from tests.integration.system import READER_TOKEN, System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs"
LINE_EVERY_S = 1  # the ticks stage prints a line a second
SHOWN_WITHIN_MS = 2000  # a printed line is on the page this soon


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory) -> Iterator[System]:
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("live-log"), "tests.pipelines.logs_catalog")
    with hamster.running({"ticks", "junit"}):
        yield hamster


@pytest.fixture
def page(browser: Browser, system: System) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        signed_in = context.new_page()
        sign_in(signed_in, base(system), READER_TOKEN)
        yield signed_in
    finally:
        context.close()


def start(system: System, repo: str, subscriber: str) -> tuple[str, str]:
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), repo)
    )
    assert status == 202
    return delivery, ids.run_id(delivery, subscriber)


def test_the_open_run_page_shows_a_running_stage_s_new_lines(system: System, page: Page):
    """Lines a running shell stage prints appear on the open run page as they come (each within two
    seconds of the one before plus its second of sleep), coloured, numbered, with anchors; the section
    completes when the stage ends, and the raw text is a link away."""
    delivery, run_id = start(system, "acme/ticks", "ticks")
    wait_until(lambda: system.runs_for(delivery), 60, what="the run in the projection")
    page.goto(f"{base(system)}/runs/{run_id}")
    section = page.locator("#log-ticks-1")
    expect(section.locator(".line", has_text="tick 2")).to_be_visible(timeout=60_000)
    for n in (3, 4, 5):
        # The stage prints tick n a second after tick n-1, which is already shown: it must follow promptly.
        expect(section.locator(".line", has_text=f"tick {n}")).to_be_visible(
            timeout=LINE_EVERY_S * 1000 + SHOWN_WITHIN_MS
        )
        expect(section).not_to_have_attribute("data-complete", "yes")  # the stage is still running
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-log.png"))
    if os.environ.get("HAMSTER_DOCS_SCREENSHOTS") == "1":
        shutil.copy(ARTIFACTS / "live-log.png", DOCS / "live-log.png")
    tick = section.locator(".line", has_text="tick 3")
    expect(tick.locator("span span")).to_have_attribute("style", "color: #00aa00")  # ANSI green
    expect(section.locator(".line.stderr", has_text="tock 3")).to_have_count(1)
    anchor = tick.get_attribute("id")
    tick.locator("a.ln").click()
    expect(page).to_have_url(f"{base(system)}/runs/{run_id}#{anchor}")
    expect(section).to_have_attribute("data-complete", "yes", timeout=60_000)
    expect(page.locator("#log")).to_have_attribute("data-state", "complete")
    expect(section.locator(".line", has_text="tick 8")).to_have_count(1)
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=30_000)

    # Opened afterwards (a link to a line), the log reads back from the topic and scrolls to the line.
    page.goto(f"{base(system)}/runs/{run_id}#{anchor}")
    expect(page.locator(f"#{anchor}")).to_be_in_viewport(timeout=30_000)
    expect(page.locator("#log")).to_have_attribute("data-state", "complete")
    raw = page.request.get(base(system) + (page.locator("#raw-log").get_attribute("href") or ""))
    assert raw.ok and "tick 8" in raw.text()


def test_the_run_page_shows_the_failed_tests(system: System, page: Page):
    """The JUnit report of a failed stage: its counts and its two failures, each at its file and line."""
    delivery, run_id = start(system, "acme/junit", "junit")
    system.wait_finished(delivery)
    page.goto(f"{base(system)}/runs/{run_id}")
    expect(page.locator(".test-counts")).to_contain_text("4 tests: 1 passed, 2 failed, 0 errors, 1 skipped")
    failures = page.locator(".test-failure")
    expect(failures).to_have_count(2)
    expect(failures.nth(0)).to_contain_text("tests/test_api.py:12")
    expect(failures.nth(1)).to_contain_text("tests/test_models.py:7")
