"""The real server (daphne, as deployed) in a subprocess, and Debian's Chromium driven by
Playwright. Nothing is mocked: pages, sockets and the database are the product's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.browser.audio_probe import write_tone
from tests.servers import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("server"))
    server.start()
    yield server
    server.stop()


# Package scope (this directory's tests run one after another): Playwright's sync API runs an
# event loop in this thread while it is open, and the asyncio tests elsewhere need the thread
# to themselves, so no asyncio test may live in tests/browser/. One Playwright and one Chromium
# for all the browser modules, not one each (1.2 s a module).
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator:
    contexts = []

    def make() -> Page:
        context = browser.new_context()
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def launch_with_mic(playwright: Playwright, wav: Path) -> Browser:
    """A Chromium process whose fake microphone plays `wav`, and whose pages play the room's
    audio without a click (the autoplay policy)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--autoplay-policy=no-user-gesture-required",
            f"--use-file-for-fake-audio-capture={wav}",
        ],
    )


@pytest.fixture
def browser_with_mic(playwright: Playwright, tmp_path: Path) -> Iterator:
    """A page in a Chromium process of its own, whose fake microphone plays a tone (None:
    silence) and whose pages play the room's audio without a click (the autoplay policy);
    `page.context.browser` opens more pages in that process."""
    browsers: list[Browser] = []

    def launch(frequency: float | None) -> Page:
        wav = write_tone(tmp_path / f"tone-{frequency}-{len(browsers)}.wav", frequency)
        browser = launch_with_mic(playwright, wav)
        browsers.append(browser)
        return browser.new_page()

    yield launch
    for browser in browsers:
        browser.close()


def sign_up(page: Page, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", "a-long-test-password-42")
    page.fill("#id_password2", "a-long-test-password-42")
    page.click("button[type=submit]")
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def sign_in_admin(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/admin/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
