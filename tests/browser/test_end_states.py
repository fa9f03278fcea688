"""Leave, kick, ban, end and a second tab each end the room for a user with one clear
full-screen state: why, and the right next step; the room behind it takes no more clicks
(issue 13, broken point 3: they used to leave a frozen room with live-looking buttons)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.audio_probe import request
from tests.browser.conftest import sign_in_admin
from tests.browser.test_embed import mint
from tests.servers import LiveServer

pytestmark = pytest.mark.browser


def live(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def open_room(page: Page, url: str) -> Page:
    page.goto(url)
    live(page)
    return page


def ended_as(page: Page, state: str, title: str) -> None:
    panel = page.locator("#end-state")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-state", state)
    expect(page.locator("#end-state-title")).to_have_text(title)
    # Behind it the room is inert: its buttons no longer take a click.
    assert page.evaluate("() => document.getElementById('seats').closest('[inert]') !== null")


def test_leaving_and_being_removed_offer_to_join_again(server: LiveServer, new_page) -> None:
    server.create_room("end-kick")
    host = open_room(new_page(), server.embed_url("end-kick", "hana", role="host"))
    ann = open_room(new_page(), server.embed_url("end-kick", "ann"))

    request(ann, "room.leave")
    ended_as(ann, "localLeave", "You left the room")
    ann.locator("#end-rejoin").click()
    live(ann)
    expect(ann.locator("#end-state")).to_be_hidden()

    request(host, "member.kick", userID="ann")
    ended_as(ann, "kickOut", "You were removed from the room")
    expect(ann.locator("#end-rejoin")).to_have_text("Join again")
    ann.locator("#end-rejoin").click()
    live(ann)

    request(host, "member.ban", userID="ann")
    ended_as(ann, "banned", "You were banned from this room")
    expect(ann.locator("#end-rejoin")).to_be_hidden()
    # Joining again is refused, and the page says so the same way, with nothing uncaught in
    # its console (its audio connection's offer had nowhere to go: "Not connected...").
    errors: list[str] = []
    ann.on("pageerror", lambda error: errors.append(str(error)))
    ann.reload()
    ended_as(ann, "banned", "You were banned from this room")
    expect(ann.locator("#end-state-detail")).to_contain_text("banned")
    # Its audio connection gathers candidates for up to 3 s before it would offer: give the
    # page that long to show an uncaught rejection (there is no event for "none came").
    with pytest.raises(PlaywrightTimeout):
        ann.wait_for_event("pageerror", timeout=4_000)
    assert errors == [], errors


def test_a_second_tab_takes_over_and_the_first_can_take_it_back(
    server: LiveServer, new_page
) -> None:
    server.create_room("end-tabs")
    url = server.embed_url("end-tabs", "tom")
    first = open_room(new_page(), url)
    second = open_room(first.context.new_page(), url)
    ended_as(first, "sessionReplaced", "This room is open in another tab")
    first.locator("#end-rejoin").click()
    live(first)
    ended_as(second, "sessionReplaced", "This room is open in another tab")


def test_the_end_of_the_room_offers_its_host_to_start_it_again(
    server: LiveServer, new_page
) -> None:
    host = new_page()
    sign_in_admin(host, server)  # demo / demo hosts the site's demo room
    host.goto(server.url + "/")
    host.fill("input[name=title]", "Last call")
    host.fill("input[name=room_id]", "end-again")
    host.locator("form.create-room button[type=submit]").click()
    live(host)
    guest = open_room(new_page(), server.embed_url("end-again", "gus", app_id=1))

    request(host, "room.end")
    ended_as(host, "roomEnded", "The room has ended")
    ended_as(guest, "roomEnded", "The room has ended")
    expect(guest.locator("#end-rejoin")).to_be_hidden()
    expect(guest.locator("#end-restart")).to_be_hidden()
    expect(host.locator("#end-lobby")).to_have_attribute("href", "/")
    host.locator("#end-restart button").click()
    live(host)
    expect(host.locator("h1")).to_have_text("Last call")
    expect(host.locator("#end-state")).to_be_hidden()


def test_an_expired_session_says_so_and_the_sites_page_joins_again(
    new_page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The site's page mints a token for LIVEAUDIO_PAGE_TOKEN_TTL_SECONDS: when it runs out
    the room ends for its user with "Your session has expired" and "Join again" loads a page
    with a new one. Embedded, the token is the integrator's: no button, their page decides."""
    short = LiveServer(
        tmp_path_factory.mktemp("short-tokens"), env={"LIVEAUDIO_PAGE_TOKEN_TTL_SECONDS": "6"}
    )
    short.start()
    try:
        site = new_page()
        sign_in_admin(site, short)
        open_room(site, short.url + "/rooms/demo/")
        embedded = new_page()
        token = mint(short.app_sign(), "demo", "emma", ttl=6)
        open_room(embedded, f"{short.url}/embed/1234567/demo/?token={token}")

        for page in (site, embedded):
            panel = page.locator("#end-state")
            expect(panel).to_have_attribute("data-state", "tokenExpired", timeout=30_000)
            ended_as(page, "tokenExpired", "Your session has expired")
        expect(embedded.locator("#end-rejoin")).to_be_hidden()
        expect(site.locator("#end-rejoin")).to_have_text("Join again")
        site.locator("#end-rejoin").click()
        live(site)
        expect(site.locator("#end-state")).to_be_hidden()
    finally:
        short.stop()
