"""A real `sgt serve` and Debian's headless Chromium, driven by Playwright.

The browser is the system's /usr/bin/chromium (`apt-get install chromium`; the Makefile does it):
no browser is ever downloaded. When it cannot be started every test here fails with the reason;
none is skipped. Each test gets a fresh browser context that records console errors and refuses,
and records, every request that leaves the loopback interface.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
from browser_support import BrowserLog  # noqa: E402
from e2e_server import Session, SgtServer, register_user  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
BROWSER_SYSTEM_KEY = "browser-system-key"
# Where the tests also save their screenshots when set (e.g. `docs` to refresh the README's).
SCREENSHOT_DIR_VARIABLE = "DASHBOARD_SCREENSHOTS_DIR"
SCREENSHOTS_TO = os.environ.get(SCREENSHOT_DIR_VARIABLE)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SgtServer]:
    root = tmp_path_factory.mktemp("browser")
    running = SgtServer(root / "data", system_key=BROWSER_SYSTEM_KEY)
    running.start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def new_user(server: SgtServer) -> Iterator[Callable[[str], Session]]:
    made: list[Session] = []

    def make(prefix: str) -> Session:
        made.append(register_user(server, prefix))
        return made[-1]

    yield make
    for user in made:
        user.delete_all_models()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make install does it)")
    try:
        launched = playwright_driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
    except Exception as error:  # the reason is all a reader needs; no test may skip
        pytest.fail(f"headless Chromium did not start: {error}")
    print(f"\nbrowser: Chromium {launched.version}")
    yield launched
    launched.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def context(browser: Browser, browser_log: BrowserLog) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 800})

    def keep_on_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            browser_log.external_requests.append(url)
            route.abort()

    made.route("**/*", keep_on_loopback)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext, browser_log: BrowserLog) -> Iterator[Page]:
    opened = context.new_page()
    opened.on(
        "console",
        lambda message: (
            browser_log.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    opened.on("pageerror", lambda error: browser_log.console_errors.append(str(error)))
    yield opened
    assert browser_log.console_errors == [], browser_log.console_errors
    assert browser_log.external_requests == [], browser_log.external_requests


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Saves a full-page screenshot under tmp_path (and $DASHBOARD_SCREENSHOTS_DIR when set)."""

    def take(page: Page, name: str) -> Path:
        path = tmp_path / name
        page.screenshot(path=str(path), full_page=True)
        if SCREENSHOTS_TO:
            target = Path(SCREENSHOTS_TO) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        return path

    return take
