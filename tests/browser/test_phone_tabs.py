"""On a phone the chat and the member list are tabs (issue 13, phone layout): the room fills
the screen, the stage scrolls within its place, one tab shows at a time and keeps showing
through the room's updates, the keys of the tabs pattern work, and the chat's tab counts
what came while the member list was showing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_first_minutes import host_and_guest
from tests.servers import LiveServer

pytestmark = pytest.mark.browser

PHONE = (390, 844)


def in_view(page: Page, selector: str) -> bool:
    return page.locator(selector).evaluate(
        """(e) => { const b = e.getBoundingClientRect();
                    return b.height > 0 && b.top >= 0 && b.bottom <= innerHeight + 1; }"""
    )


def test_chat_and_members_are_tabs_on_a_phone(server: LiveServer, new_page, tmp_path) -> None:
    host, ann = host_and_guest(server, new_page, "tabs", "ann", size=PHONE)
    chat_tab, members_tab = host.locator("#tab-chat"), host.locator("#tab-members")
    expect(chat_tab).to_have_attribute("aria-selected", "true")
    expect(host.locator("#chat")).to_be_visible()
    expect(host.locator("#members")).to_be_hidden()
    # The whole room on one screen: no page scroll, the bar and the chat's Send in view.
    assert host.evaluate("() => document.documentElement.scrollHeight <= innerHeight + 1")
    for selector in ("#bottom-bar", "#chat-form button"):
        assert in_view(host, selector), selector

    members_tab.click()
    expect(members_tab).to_have_attribute("aria-selected", "true")
    expect(host.locator("#members")).to_be_visible()
    expect(host.locator("#chat")).to_be_hidden()
    # An update swaps in a new member list: it is still the one showing.
    ann.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    expect(host.locator('#members li[data-user-id="ann"] .remove-speaker')).to_be_visible()
    expect(host.locator("#chat")).to_be_hidden()
    # The first row's four seats on one line, though Ann's has a host's three tools under it.
    tops = (
        host.locator("#seats .seat-row")
        .first.locator(".seat")
        .evaluate_all("(seats) => seats.map((s) => Math.round(s.getBoundingClientRect().top))")
    )
    assert len(tops) == 4 and len(set(tops)) == 1, tops

    # Someone's messages meanwhile: the chat's tab counts them; choosing it clears the count.
    for text in ("hi", "anyone?"):
        ann.evaluate(f"() => window.liveaudio.request('message.send', {{message: '{text}'}})")
    expect(host.locator("#tab-chat .unread")).to_have_text("2")
    host.keyboard.press("ArrowLeft")  # focus is on the member tab, clicked last
    expect(chat_tab).to_be_focused()
    expect(chat_tab).to_have_attribute("aria-selected", "true")
    expect(host.locator("#tab-chat .unread")).to_be_hidden()
    expect(host.locator("#chat .message", has_text="anyone?")).to_be_visible()
    host.keyboard.press("End")
    expect(members_tab).to_have_attribute("aria-selected", "true")
    host.screenshot(path=str(tmp_path / "phone.png"))


def test_wider_both_show_and_there_are_no_tabs(server: LiveServer, new_page) -> None:
    host, _ = host_and_guest(server, new_page, "no-tabs", "ann", size=(1280, 800))
    expect(host.locator(".panel-tabs")).to_be_hidden()
    expect(host.locator("#chat")).to_be_visible()
    expect(host.locator("#members")).to_be_visible()
