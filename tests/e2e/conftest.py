"""Browser fixtures for the end-to-end tests: Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

# Playwright's own browser download is not used: the tests drive the distribution's Chromium.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's `chromium`. Never skipped: without it the browser tests fail, in CI or not."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "`chromium` is not on PATH: the end-to-end browser tests drive Debian's Chromium "
            "(apt-get install chromium; .ci/run installs it).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """A headless Chromium for the tests of one module (sync API: keep the tests sync)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
