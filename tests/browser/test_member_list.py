"""A host in a room of more people than the member list's first page: "Show more" pages in
the rest, the search finds one name, and that person's row invites them to a seat."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.servers import LiveServer, query

pytestmark = pytest.mark.browser

FILLERS = 80  # people in the room without a browser: rows in the server's database


def add_listeners(server: LiveServer, room_id: str, count: int) -> None:
    """Listeners present in the room, written straight into the server's database: cheaper
    than a browser each, and the server reads them like any others. Their channel names are
    the server process's own, so its presence sweep takes them for connected."""
    [(room_pk,)] = query(
        server, "SELECT id FROM rooms_room WHERE room_id = ? AND ended_at IS NULL", room_id
    )
    [(prefix,)] = query(
        server, "SELECT channel_prefix FROM rooms_serverprocess ORDER BY heartbeat_at DESC LIMIT 1"
    )
    start = datetime.now(UTC) - timedelta(minutes=5)  # before anyone with a browser
    rows = [
        (
            room_pk,
            f"filler-{i:02}",
            f"Filler {i:02}",
            (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            f"{prefix}!filler-{i:02}",
        )
        for i in range(count)
    ]
    with sqlite3.connect(Path(server.env["LIVEAUDIO_SQLITE_PATH"])) as conn:
        conn.executemany(
            "INSERT INTO rooms_member (room_id, user_id, user_name, role, joined_at, online,"
            " mic_on, banned, channel_name) VALUES (?, ?, ?, 'audience', ?, 1, 0, 0, ?)",
            rows,
        )


def test_a_host_pages_searches_and_invites_someone_past_the_first_page(
    server: LiveServer, new_page
) -> None:
    server.create_room("crowd")
    add_listeners(server, "crowd", FILLERS)
    host, ben = new_page(), new_page()
    host.goto(server.embed_url("crowd", "hana", role="host"))
    expect(host.locator("#connection")).to_have_attribute("data-state", "live")
    ben.goto(server.embed_url("crowd", "ben"))
    members = host.locator("#members")
    expect(members.locator("#members-count")).to_have_text(str(FILLERS + 2))
    first_page = members.locator(".members-first > li")
    expect(first_page).to_have_count(60)  # the host on a seat, then the earliest 59 listeners
    expect(members.locator('li[data-user-id="filler-60"]')).to_have_count(0)

    # "Show more": the next rows, the host's tools on them; the first page's button gives way.
    members.locator(".members-show-more").first.click()
    found = members.locator("#members-found")
    row_61 = found.locator('li[data-user-id="filler-59"]')
    expect(row_61).to_be_visible()
    expect(row_61.locator(".invite")).to_be_visible()
    expect(found.locator('li[data-user-id="ben"]')).to_be_visible()  # the last to join
    expect(found.locator("> li[data-user-id]")).to_have_count(FILLERS + 2 - 60)
    expect(members.locator("> .members-show-more")).to_be_hidden()

    # The search finds Ben among 82; the first page steps aside for the matches.
    members.locator("#member-search input").fill("BEN")
    expect(found.locator("> li[data-user-id]")).to_have_count(1)
    expect(first_page.first).to_be_hidden()

    # The host invites him from the search's row; he takes the seat.
    found.locator('li[data-user-id="ben"] .invite').click()
    expect(ben.locator("#invitation")).to_be_visible()
    ben.click("#accept-invitation")
    expect(host.locator('#seats .seat-cell[data-user-id="ben"]')).to_be_visible()
    # His row in the search is asked for again: now a speaker's, with a speaker's tools.
    expect(found.locator('li[data-user-id="ben"] .remove-speaker')).to_be_visible()

    # Emptying the search brings the first page back.
    members.locator("#member-search input").fill("")
    expect(found.locator("> li")).to_have_count(0)
    expect(first_page.first).to_be_visible()

    # A paged-in row's kick works, and the row of whoever left goes at the next update.
    members.locator(".members-show-more").first.click()
    kicked = found.locator('li[data-user-id="filler-70"]')
    kicked.locator(".kick").click()
    host.click("#confirm-ok")
    expect(members.locator("#members-count")).to_have_text(str(FILLERS + 1))
    expect(kicked).to_have_count(0)
    expect(found.locator('li[data-user-id="filler-71"]')).to_be_visible()
