"""Debian's chromium under Playwright, as this machine runs it (never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, ViewportSize

CHROMIUM = "/usr/bin/chromium"
# The dashboard tests' desktop window (the `context` fixture, tests/web/conftest.py).
DESKTOP = ViewportSize(width=1440, height=900)
# What this machine needs (no sandbox as root, no GPU, nothing phoning home).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless chromium with a fresh profile; fails clearly when it is not installed."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(`bash scripts/ensure-system-packages.sh chromium`; `make check-services` does it)"
        )
    # Playwright gives each launch a fresh user-data-dir of its own.
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
