"""System lines in the chat (issue 13): "Ben joined", "Ben is now speaking", "Ben left" — the
page's own, from the room updates; `systemMessages` in a config turns them off, or the join
and leave lines alone past a number of members online."""

from __future__ import annotations

import functools
import json
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from rooms.models import App
from rooms.tokens import token_mint
from tests.browser.test_first_minutes import host_and_guest
from tests.servers import LiveServer, free_port

pytestmark = pytest.mark.browser

LINES = "#chat-messages .system-line"


def live(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_joins_new_speakers_and_leaves_are_lines_in_the_chat(server: LiveServer, new_page) -> None:
    host, ann = host_and_guest(server, new_page, "lines", "ann")
    lines = host.locator(LINES)
    expect(lines).to_have_text(["Ann joined"])  # not the host's own arrival

    ben = new_page()
    ben.goto(server.embed_url("lines", "ben"))
    live(ben)
    ben.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    expect(lines).to_have_text(["Ann joined", "Ben joined", "Ben is now speaking"])
    # A move to another seat is not news; Ben's own page tells Ben nothing of himself.
    ben.evaluate("() => window.liveaudio.request('seat.take', {index: 3})")
    expect(ann.locator(LINES).last).to_have_text("Ben is now speaking")
    ben.evaluate("() => window.liveaudio.request('room.leave')")
    expect(lines).to_have_text(["Ann joined", "Ben joined", "Ben is now speaking", "Ben left"])
    expect(ann.locator(LINES)).to_have_text(["Ben joined", "Ben is now speaking", "Ben left"])
    # Lines are not chat messages: the SDK's message list and the empty chat's hint ignore them.
    assert host.evaluate("() => window.liveaudio.messages.length") == 0
    expect(host.locator(".chat-empty")).to_be_visible()
    host.locator("#chat-form input[name=message]").fill("Welcome!")
    host.locator("#chat-form button").click()
    expect(host.locator(".chat-empty")).to_be_hidden()


def test_a_long_chat_follows_its_newest_line_until_scrolled_up(
    server: LiveServer, new_page
) -> None:
    host, ann = host_and_guest(server, new_page, "follow", "ann", size=(1280, 800))
    for n in range(30):
        ann.evaluate(f"() => window.liveaudio.request('message.send', {{message: 'line {n}'}})")
    newest = host.locator("#chat-messages .message", has_text="line 29")
    expect(newest).to_be_in_viewport()
    host.locator("#chat-messages").evaluate("(list) => { list.scrollTop = 0; }")
    ann.evaluate("() => window.liveaudio.request('message.send', {message: 'one more'})")
    expect(host.locator("#chat-messages .message", has_text="one more")).to_have_count(1)
    assert host.locator("#chat-messages").evaluate("(list) => list.scrollTop") == 0


@functools.cache
def allowed_port(server: LiveServer) -> int:
    """A port whose origin the demo app allows: set up once per server (each manage.py run
    is a Django start-up, 1.5-3 s), not once per session asked for."""
    port = free_port()
    server.manage("setup_demo", "--base-url", server.url, "--demo-port", str(port))
    return port


def session_url(server: LiveServer, room_id: str, user_id: str, config: dict, **more) -> str:
    """An embed session with a config, as the SDK asks for one (from an origin the app allows)."""
    port = allowed_port(server)
    app = App(app_id=1234567, app_sign=server.app_sign())
    token = token_mint(app=app, room_id=room_id, user_id=user_id, user_name=user_id.title(), **more)
    body = {
        "appID": 1234567,
        "roomID": room_id,
        "userID": user_id,
        "userName": user_id.title(),
        "token": token,
        "config": config,
    }
    request = urllib.request.Request(
        server.url + "/embed/sessions/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["url"]


def test_the_config_turns_the_lines_off_or_the_join_lines_past_a_size(
    server: LiveServer, new_page
) -> None:
    host, ann = host_and_guest(server, new_page, "quiet", "ann")
    off, small = new_page(), new_page()
    off.goto(session_url(server, "quiet", "olga", {"systemMessages": {"enabled": False}}))
    small.goto(session_url(server, "quiet", "sid", {"systemMessages": {"joinsUpTo": 3}}))
    live(off)
    live(small)
    ben = new_page()
    ben.goto(server.embed_url("quiet", "ben"))  # the fifth one online: past sid's 3
    live(ben)
    ben.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    expect(host.locator(LINES).last).to_have_text("Ben is now speaking")
    expect(small.locator(LINES)).to_have_text(["Ben is now speaking"])
    expect(off.locator('#seats .seat-cell[data-user-id="ben"]')).to_have_count(1)
    assert off.locator(LINES).count() == 0
