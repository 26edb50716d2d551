"""Debian's Chromium as the browser tests drive it (through Playwright), and where the dashboard answers."""

from __future__ import annotations

from pathlib import Path

from tests.integration.system import System

CHROMIUM = "/usr/bin/chromium"
# Quiet, offline and sandbox-free: the test runs as root in a container with no GPU and no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # the screenshots every run keeps


def base(system: System) -> str:
    """The dashboard's address on the running `hamster web`."""
    return f"http://127.0.0.1:{system.intake_port}"
