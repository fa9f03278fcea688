"""Pages that come back by themselves: the room page and the embedded room rejoin after the
server restarts (close 4013, and the server still down when they first look), and a page
shows "reconnecting…" through a Redis outage and is live again once Redis is back (1011)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import sign_up
from tests.live_clients import online_in_database, postgres_database, server_process
from tests.redis_server import RedisServer
from tests.servers import LiveServer

pytestmark = pytest.mark.browser
BACK_WITHIN = 60_000  # ms: a restart, the page's backoff and a loaded machine


def wait_live(page: Page, timeout: float = BACK_WITHIN) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=timeout)


def wait_reconnecting(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute(
        "data-state", "reconnecting", timeout=30_000
    )
    expect(page.locator("#connection")).to_contain_text("reconnecting")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_room_page_and_embedded_room_rejoin_after_a_restart(server: LiveServer, new_page) -> None:
    site, embedded = new_page(), new_page()
    sign_up(site, server, "sam")
    site.goto(server.url + "/rooms/demo/")
    embedded.goto(server.embed_url("demo", "erin"))
    wait_live(site)
    wait_live(embedded)

    failed: list[str] = []  # what the pages asked while the server was down
    for page in (site, embedded):
        page.on("requestfailed", lambda request: failed.append(request_line(request)))

    os.kill(server_process(server).pid, signal.SIGTERM)
    wait_reconnecting(site)
    wait_reconnecting(embedded)
    server_process(server).wait(15)
    # Down for as long as it takes both pages to find it so; a reload now would strand them
    # on the browser's error page.
    expect_failed_asks(site, failed, {"/rooms/demo/", "/embed/"})
    server.start(set_up=False)

    wait_live(site)
    wait_live(embedded)
    # (Two rooms: the site's "demo" and the demo app's; each page is back in its own.)
    expect(site.locator("#members")).to_contain_text("sam")
    expect(embedded.locator("#members")).to_contain_text("Erin")
    eventually(
        site, lambda: len(online_in_database(server)) == 2 and "erin" in online_in_database(server)
    )


def request_line(request: Request) -> str:
    return f"{request.method} {request.url}"


def expect_failed_asks(page: Page, failed: list[str], paths: set[str]) -> None:
    """Until each page's HEAD of its own URL has failed at least once."""

    def seen(path: str) -> bool:
        return any(line.startswith("HEAD") and path in line for line in failed)

    eventually(page, lambda: all(seen(path) for path in paths), f"no look for the server: {failed}")


def eventually(page: Page, condition: Callable[[], bool], message: str = "") -> None:
    """Poll `condition` for up to 60 s, letting Playwright deliver the pages' events."""
    for _ in range(600):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(message or "the condition never held")


@pytest.fixture
def scale_out(tmp_path: Path) -> Iterator[tuple[LiveServer, RedisServer]]:
    """A server on PostgreSQL and a redis-server of the test's own (killed, then restarted)."""
    with ExitStack() as stack:
        redis = RedisServer(tmp_path)
        redis.start()
        stack.callback(redis.kill)
        env = {
            "LIVEAUDIO_DATABASE_URL": stack.enter_context(postgres_database()),
            "LIVEAUDIO_REDIS_URL": redis.url,
        }
        server = LiveServer(tmp_path, env)
        server.start()
        stack.callback(server.stop)
        yield server, redis


def test_page_says_reconnecting_through_a_redis_outage_and_rejoins(scale_out, new_page) -> None:
    server, redis = scale_out
    page = new_page()
    page.goto(server.embed_url("demo", "rita"))
    wait_live(page)

    redis.kill()
    wait_reconnecting(page)
    expect(page.locator("#connection")).to_have_text("reconnecting…")
    redis.start()

    wait_live(page)
    expect(page.locator("#members")).to_contain_text("Rita")
    eventually(page, lambda: online_in_database(server) == {"rita"})
    wait_live(page)
