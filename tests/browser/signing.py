"""Signing a browser in to the dashboard, as a person does: through the sign-in page with a token."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def sign_in(page: Page, base: str, token: str, then: str = "/runs") -> None:
    """Open ``then``, get sent to the sign-in page, sign in with ``token``, and land back on ``then``."""
    page.goto(f"{base}{then}")
    expect(page.locator("#signin-token")).to_be_visible()
    page.fill('#signin-token input[name="token"]', token)
    page.click('#signin-token button[type="submit"]')
    expect(page).to_have_url(f"{base}{then}")
    expect(page.locator("#signed-in")).to_be_visible()
