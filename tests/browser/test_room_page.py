"""Two people in one room, in two browser contexts, plus an operator in admin."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, sign_in_admin, sign_up

pytestmark = pytest.mark.browser


def wait_live(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_seats_chat_locks_and_moderation_reach_every_screen(server: LiveServer, new_page):
    alice, bob, operator = new_page(), new_page(), new_page()

    # Alice starts a room from the lobby: she is its host.
    sign_up(alice, server, "alice")
    alice.fill("#id_title", "Friday <b>jam</b>")
    alice.fill("#id_room_id", "friday-jam")
    alice.click(".create-room button[type=submit]")
    expect(alice).to_have_url(re.compile(r"/rooms/friday-jam/$"))
    expect(alice.locator("h1")).to_have_text("Friday <b>jam</b>")  # escaped, not bold
    wait_live(alice)
    expect(alice.locator("#bottom-bar .role")).to_have_text("host")

    # Bob finds it in the lobby and joins; Alice sees him arrive.
    sign_up(bob, server, "bob")
    bob.click("text=Friday <b>jam</b>")
    wait_live(bob)
    expect(alice.locator("#members")).to_contain_text("bob")

    # Alice takes seat 1; Bob sees it taken.
    alice.click("#seat-1")
    expect(bob.locator("#seat-1 .seat-name")).to_have_text("alice")
    expect(bob.locator("#seat-1")).to_have_class(re.compile(r"\btaken\b"))

    # Bob chats; Alice sees it live, escaped.
    bob.fill("input[name=message]", "hello <i>everyone</i>")
    bob.press("input[name=message]", "Enter")
    message = alice.locator("#chat-messages .message", has_text="hello <i>everyone</i>")
    expect(message).to_be_visible()
    expect(bob.locator("input[name=message]")).to_have_value("")

    # Alice locks the room; Bob's take is refused with a visible error.
    alice.click("#lock-all")
    expect(bob.locator("#seat-2")).to_have_class(re.compile(r"\blocked\b"))
    bob.click("#seat-2")
    expect(bob.locator("#toast")).to_be_visible()
    expect(bob.locator("#toast")).to_contain_text("Seat 2 is locked")
    expect(bob.locator("#seat-2")).not_to_have_class(re.compile(r"\btaken\b"))

    # An operator deletes Bob's message in admin; it disappears from Alice's page.
    sign_in_admin(operator, server)
    operator.goto(server.url + "/admin/rooms/message/")
    operator.locator("tr", has_text="hello <i>everyone</i>").locator("input.action-select").check()
    operator.select_option("select[name=action]", "hide")
    operator.click("button[name=index]")
    expect(operator.locator(".messagelist")).to_contain_text("Deleted from the room")
    expect(message).to_have_count(0)
    expect(bob.locator("#chat-messages .message")).to_have_count(0)
