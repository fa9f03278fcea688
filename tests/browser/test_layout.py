"""The room at a phone's size and in a narrow embed (issue 13, phone layout): nothing past
the right edge, seat names under 20 characters whole, a row of seats on one line, the bottom
bar on one line at 760 px and on screen, without scrolling, on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.servers import LiveServer

pytestmark = pytest.mark.browser

# User IDs whose names (their title case) are 15-16 characters long.
NAMES = ["speaker-number-0", "maximilian-weber", "siobhan-o-neill"]


def host_with_speakers(server: LiveServer, new_page, room: str, size: tuple[int, int]) -> Page:
    server.create_room(room)
    host = new_page()
    host.set_viewport_size({"width": size[0], "height": size[1]})
    host.goto(server.embed_url(room, "hana", role="host"))
    for index, user_id in enumerate(NAMES, start=1):
        page = new_page()
        page.goto(server.embed_url(room, user_id))
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        page.evaluate(f"() => window.liveaudio.request('seat.take', {{index: {index}}})")
    expect(host.locator("#seats .seat-cell[data-user-id]")).to_have_count(1 + len(NAMES))
    listener = new_page()  # and one in the audience, under the stage
    listener.goto(server.embed_url(room, "listener-number-9"))
    expect(host.locator("#seats .listener")).to_have_count(1)
    return host


def outside_on_the_right(page: Page) -> list[str]:
    return page.evaluate(
        """() => {
          const right = document.documentElement.clientWidth;
          return [...document.querySelectorAll("#room *")]
            .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > right + 1)
            .map((e) => e.id || e.className || `${e.tagName} ${e.textContent.trim().slice(0, 20)}`);
        }"""
    )


def clipped_seat_names(page: Page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll("#seats .seat-name, #seats .listener-name")]
          .filter((e) => e.textContent.trim().length < 20 && e.scrollWidth > e.clientWidth + 1)
          .map((e) => e.textContent)"""
    )


@pytest.mark.parametrize("size", [(390, 844), (760, 640)], ids=["phone", "embed-760"])
def test_the_room_fits(server: LiveServer, new_page, size: tuple[int, int]) -> None:
    host = host_with_speakers(server, new_page, f"layout-{size[0]}", size)
    assert outside_on_the_right(host) == []
    assert clipped_seat_names(host) == []
    bar = host.locator("#bottom-bar")
    box = bar.bounding_box()
    assert box is not None and box["y"] + box["height"] <= size[1] + 1, box  # on screen
    tops = {round(b.bounding_box()["y"]) for b in bar.locator("button:visible").all()}
    if size[0] >= 700:
        assert len(tops) == 1, tops  # one line
    # A row of the stage is one line, the host's tools on each speaker's seat included (on a
    # phone they made each seat 90 px wide and pushed the fourth seat onto a line of its own).
    seat_tops = host.evaluate(
        """() => [...document.querySelector("#seats .seat-row").children]
          .map((cell) => Math.round(cell.getBoundingClientRect().top))"""
    )
    assert len(set(seat_tops)) == 1, seat_tops
