"""The real server (daphne, as deployed) in a subprocess, and Debian's Chromium driven by
Playwright. Nothing is mocked: pages, sockets and the database are the product's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LIVEAUDIO_VAR_DIR": str(workdir),
            "LIVEAUDIO_SQLITE_PATH": str(workdir / "db.sqlite3"),
            "LIVEAUDIO_ALLOWED_HOSTS": "127.0.0.1",
            "LIVEAUDIO_SEAT_GRACE_SECONDS": "2",
            "DJANGO_SETTINGS_MODULE": "liveaudio.settings",
        }
        self.log = workdir / "server.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def start(self) -> None:
        self.manage("migrate", "-v0")
        self.manage("setup_demo", "--base-url", self.url)
        daphne = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "liveaudio.asgi:application",
        ]
        self.process = subprocess.Popen(
            daphne, cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server died:\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)  # polling for the port, not waiting on behaviour
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("server"))
    server.start()
    yield server
    server.stop()


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, and
# the asyncio tests of other modules need the thread to themselves.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
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
