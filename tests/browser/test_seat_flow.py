"""Issue 4 in the browser: a raised hand, an invitation declined, a co-host taking over."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.servers import LiveServer

pytestmark = pytest.mark.browser


def open_room(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def member_row(page: Page, user_id: str):
    return page.locator(f'#members li[data-user-id="{user_id}"]')


def test_hand_raise_invitation_and_cohost(server: LiveServer, new_page) -> None:
    server.create_room("flow-room")
    host, ann, ben = new_page(), new_page(), new_page()
    open_room(host, server.embed_url("flow-room", "hana", role="host"))
    open_room(ann, server.embed_url("flow-room", "ann"))
    open_room(ben, server.embed_url("flow-room", "ben"))

    # The host locks the room; Ann raises a hand and the host sees the queue, with the time.
    host.click("#lock-all")
    expect(ann.locator("#seat-3")).to_have_class(re.compile(r"\blocked\b"))
    ann.click("#raise-hand")
    queue = host.locator("#requests")
    expect(queue.locator(".request-name")).to_have_text(["Ann"])
    expect(queue.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(ann.locator("#lower-hand")).to_be_visible()

    # The host accepts: Ann is seated, with her microphone on.
    queue.locator(".accept").click()
    expect(host.locator("#seat-1 .seat-name")).to_have_text("Ann")
    expect(host.locator("#seat-1 .mic")).to_have_text("mic on")
    expect(ann.locator("#mic-toggle")).to_have_text("Mute mic")
    expect(queue).to_be_hidden()

    # The host invites Ben, who declines; the host is told.
    member_row(host, "ben").locator(".invite").click()
    expect(ben.locator("#invitation")).to_be_visible()
    ben.click("#decline-invitation")
    expect(ben.locator("#invitation")).to_be_hidden()
    expect(host.locator("#notice")).to_have_text("Ben declined your invitation.")

    # The host makes Ann co-host and leaves; Ann can now lock and unlock seats.
    member_row(host, "ann").locator(".make-cohost").click()
    expect(member_row(ann, "ann").locator(".role")).to_have_text("cohost")
    expect(ann.locator("#unlock-all")).to_have_count(0)  # the host is still here
    host.click("#leave-room")
    host.locator("#confirm-dialog #confirm-ok").click()  # the room's own dialog: yes
    expect(member_row(ann, "hana")).to_have_count(0)
    ann.click("#unlock-all")
    expect(ben.locator("#seat-5")).not_to_have_class(re.compile(r"\blocked\b"))
    # Ann's own page too: its lock button is "unlock" until her page shows the change.
    expect(ann.locator("#seat-5")).not_to_have_class(re.compile(r"\blocked\b"))
    ann.locator("#seat-5 ~ .seat-tools .seat-lock").click()
    expect(ben.locator("#seat-5")).to_have_class(re.compile(r"\blocked\b"))
    ben.click("#seat-5")
    expect(ben.locator("#toast")).to_contain_text("Seat 5 is locked")
