"""The demo integrator page (demo/site) shows what the room's data does, live, through the SDK
only: a room-properties table that a form changes, a command log that a form sends to (text
as UTF-8 bytes), and a lyrics line for SEI (#sei-line, #sei-form: the SEI test drives them).
Everything from the room is text on the page, never markup, under the page's strict policy."""

from __future__ import annotations

import base64
import json
import re
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_csp import demo_app_sign, demo_site, ordinary_page, watched
from tests.servers import LiveServer

pytestmark = pytest.mark.browser
__all__ = ["demo_site", "watched"]  # the fixtures, shared with test_csp
ROOM = "demo-data"


def join(page: Page, demo: str, name: str, role: str) -> None:
    page.fill("input[name=userName]", name)
    page.fill("input[name=roomID]", ROOM)
    page.select_option("select[name=role]", role)
    page.click("#join button[type=submit]")
    expect(page.locator("#log")).to_contain_text("joined", timeout=30_000)


def cells(page: Page, key: str):
    return page.locator(f"#properties tbody tr[data-key='{key}'] td")


def api_command(server: LiveServer, text: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/api/v1/rooms/{ROOM}/commands",
        data=json.dumps({"command": base64.b64encode(text.encode()).decode()}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(f"1234567:{demo_app_sign(server)}".encode()).decode(),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_the_demo_page_shows_room_properties_and_commands_live(
    server: LiveServer, demo_site: str, watched
) -> None:
    host, guest = watched(), watched()
    ordinary_page(host.goto(demo_site + "/"))
    join(host.page, demo_site, "Hana", "host")
    guest.goto(demo_site + "/")
    join(guest.page, demo_site, "Gus", "audience")
    for person in (host, guest):
        expect(person.page.locator("#properties-empty")).to_be_visible()

    # The guest sets a key through the form; both tables show it, as text.
    form = guest.page.locator("#property-form")
    form.locator("input[name=key]").fill("song")
    form.locator("input[name=value]").fill("<b>Ode</b> to joy")
    form.locator("button[name=set]").click()
    for person in (host, guest):
        expect(cells(person.page, "song")).to_have_text(["song", "<b>Ode</b> to joy"])
        expect(person.page.locator("#properties-empty")).to_be_hidden()
        assert person.page.locator("#properties b").count() == 0
    # A newcomer's table starts from queryProperties.
    late = watched()
    late.goto(demo_site + "/")
    join(late.page, demo_site, "Lea", "audience")
    expect(cells(late.page, "song")).to_have_text(["song", "<b>Ode</b> to joy"])
    # The host deletes the guest's key (forcing, as a host may): gone from every table.
    form = host.page.locator("#property-form")
    form.locator("input[name=key]").fill("song")
    form.locator("button[name=delete]").click()
    for person in (host, guest, late):
        expect(person.page.locator("#properties tbody tr")).to_have_count(0)
        expect(person.page.locator("#properties-empty")).to_be_visible()

    # A command: UTF-8 bytes out, the same text in the others' logs, with its order.
    form = host.page.locator("#command-form")
    form.locator("input[name=command]").fill("héllo <i>ünïcode</i> 🎵")
    form.locator("button[type=submit]").click()
    expect(host.page.locator("#commands li[data-sent=true]")).to_have_text(
        "you: héllo <i>ünïcode</i> 🎵"
    )
    for person in (guest, late):
        line = person.page.locator("#commands li").first
        expect(line).to_have_text(re.compile(r"^#\d+ demo-hana-\w+: héllo <i>ünïcode</i> 🎵$"))
        assert person.page.locator("#commands i").count() == 0
    # One from the integrator's backend (the HTTP API) reaches every page, the host's too.
    api_command(server, "from the backend")
    for person in (host, guest, late):
        expect(person.page.locator("#commands li").last).to_have_text(
            re.compile(r"^#\d+ \(the server\): from the backend$")
        )

    # The SEI hooks: the host may send lyric lines, the audience only hears them.
    expect(host.page.locator("#sei-form")).to_be_visible()
    expect(guest.page.locator("#sei-form")).to_be_hidden()
    expect(guest.page.locator("#sei-line")).to_have_text("")
    # The host (on the host's seat, microphone on) sends one: the others' lines show it, as
    # text, once their pages have played the audio it went with.
    form = host.page.locator("#sei-form")
    form.locator("input[name=lyric]").fill("Ode <b>to</b> joy 🎵")
    form.locator("button[type=submit]").click()
    expect(host.page.locator("#log")).to_contain_text('sendSEI → lyric "Ode <b>to</b> joy 🎵"')
    for person in (guest, late):
        expect(person.page.locator("#sei-line")).to_have_text("Ode <b>to</b> joy 🎵")
        assert person.page.locator("#sei-line b").count() == 0
    expect(host.page.locator("#sei-line")).to_have_text("")  # never one's own
    for person in (host, guest, late):
        person.assert_clean()
