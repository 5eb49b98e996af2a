"""Browser tests: the running demo (storefront + FakeDiscord sandbox) driven by Debian's Chromium.

Playwright drives the system's Chromium (``/usr/bin/chromium``, or ``DISCORD_ROLES_TEST_CHROMIUM``);
it never downloads a browser. Each step's screenshot is saved under ``test-output/browser/<test>/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, sync_playwright

CHROMIUM = os.environ.get("DISCORD_ROLES_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = Path(__file__).resolve().parents[3] / "test-output" / "browser"
TIMEOUT_MS = 15_000  # generous: two cores shared by Chromium, the storefront, FakeDiscord and the database


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"No Chromium at {CHROMIUM}. Install Debian's: `apt-get update && apt-get install -y chromium` "
            "(`.ci/run` does), or point DISCORD_ROLES_TEST_CHROMIUM at one.",
            pytrace=False,
        )
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


Shoot = Callable[..., Path]


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Shoot:
    """``shoot(page, "step name")`` saves a full-page screenshot, numbered in the order taken;
    ``shoot(page, "step name", element=locator)`` saves just that element (a picture for the docs)."""
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken: list[Path] = []

    def take(tab: Page, step: str, *, element: Locator | None = None) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower()).strip('-')}.png"
        if element is None:
            tab.screenshot(path=str(path), full_page=True)
        else:
            element.screenshot(path=str(path))
        taken.append(path)
        return path

    return take
