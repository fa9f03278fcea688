"""What a newcomer meets in the first minutes (issue 13, "Broken today"): the README's two
windows, one signed in as the demo host and one on the printed guest link, are two people in
one room."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in_admin
from tests.servers import LiveServer

pytestmark = pytest.mark.browser


def host_and_guest(
    server: LiveServer, new_page, room: str, guest: str, size: tuple[int, int] | None = None
) -> tuple[Page, Page]:
    """A new room with its host (Hana; at `size`, if given) and one guest, both live in it."""
    server.create_room(room)
    host, other = new_page(), new_page()
    if size is not None:
        host.set_viewport_size({"width": size[0], "height": size[1]})
    host.goto(server.embed_url(room, "hana", role="host"))
    other.goto(server.embed_url(room, guest))
    expect(other.locator("#connection")).to_have_attribute("data-state", "live")
    return host, other


def guest_link(server: LiveServer) -> str:
    printed = server.manage("setup_demo", "--base-url", server.url)
    match = re.search(r"As a guest:\s+(\S+)", printed)
    assert match, printed
    return match.group(1)


def test_the_printed_guest_link_joins_the_hosts_demo_room(server: LiveServer, new_page) -> None:
    host, guest = new_page(), new_page()
    sign_in_admin(host, server)  # demo / demo: the demo room's host
    host.goto(server.url + "/rooms/demo/")
    expect(host.locator("#connection")).to_have_attribute("data-state", "live")
    guest.goto(guest_link(server))
    expect(guest.locator("#connection")).to_have_attribute("data-state", "live")

    expect(guest.locator("h1")).to_have_text(host.locator("h1").inner_text())
    expect(host.locator('#members li[data-user-id="guest-1"]')).to_be_visible()
    # The guest raises a hand and the host, there, gets it: no "there is no host".
    guest.locator("#raise-hand").click()
    expect(host.locator("#requests")).to_contain_text("Guest")
    expect(guest.locator("#toast")).not_to_contain_text("no host")


def test_an_error_notice_goes_away_by_itself(server: LiveServer, new_page) -> None:
    """A refused action shows a notice; it must hide after a few seconds, also the second
    time (htmx swaps in a new #toast each time: the old element is no longer on screen)."""
    server.create_room("toast-room")
    page = new_page()
    page.goto(server.embed_url("toast-room", "tess"))
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    toast = page.locator("#toast")
    for _ in range(2):
        page.evaluate("() => window.liveaudio.request('seat.take', {index: 99}).catch(() => {})")
        expect(toast).to_be_visible()
        expect(toast).to_contain_text("99")
        expect(toast).to_be_hidden(timeout=10_000)


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_the_hosts_member_list_shows_a_seated_speakers_whole_name(
    server: LiveServer, new_page, size: tuple[int, int]
) -> None:
    """With the host's tools on a speaker's row (co-host, remove, kick), the name still
    shows in full: it used to shrink to nothing, or to "ca…" on a phone."""
    host, speaker = host_and_guest(server, new_page, f"names-{size[0]}", "caroline", size)
    speaker.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    if size[0] < 700:  # a phone: the member list is a tab beside the chat
        host.locator("#tab-members").click()
    row = host.locator('#members li[data-user-id="caroline"]')
    expect(row.locator(".remove-speaker")).to_be_visible()
    name = row.locator(".member-name")
    expect(name).to_have_text("Caroline")
    width, scroll = name.evaluate("(el) => [el.clientWidth, el.scrollWidth]")
    assert width > 0 and scroll <= width, (width, scroll)
    # Its tools are all on screen, none past the right edge.
    right = host.evaluate("() => document.documentElement.clientWidth")
    for box in [b.bounding_box() for b in row.locator("button").all()]:
        assert box is not None and box["x"] + box["width"] <= right + 1, (box, right)
    # A listener's list shows the name and none of the host's tools.
    expect(speaker.locator('#members li[data-user-id="caroline"] .member-tools')).to_be_hidden()


def test_no_seat_tools_on_ones_own_seat(server: LiveServer, new_page) -> None:
    """The host's own seat showed "mute for me", "mute" and "lock" for the host themself."""
    host, sam = host_and_guest(server, new_page, "own-seat", "sam")
    sam.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    sams_seat = host.locator('#seats .seat-cell[data-user-id="sam"]')
    expect(sams_seat.locator(".seat-local-mute")).to_be_visible()
    expect(sams_seat.locator(".seat-lock")).to_be_visible()
    own = host.locator('#seats .seat-cell[data-user-id="hana"]')
    expect(own).to_have_count(1)
    for tool in (".seat-local-mute", ".seat-lock"):
        expect(own.locator(tool)).to_be_hidden()
    expect(sam.locator('#seats .seat-cell[data-user-id="sam"] .seat-local-mute')).to_be_hidden()


def covered(page, selector: str) -> bool:
    """Whether something else is on top of the middle of `selector`'s element."""
    return page.evaluate(
        """(selector) => {
          const element = document.querySelector(selector);
          const box = element.getBoundingClientRect();
          const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
          return !element.contains(top);
        }""",
        selector,
    )


@pytest.mark.parametrize(
    "size", [(1280, 800), (900, 640), (390, 844)], ids=["desktop", "embed", "phone"]
)
def test_the_raised_hands_cover_neither_send_nor_end_room(
    server: LiveServer, new_page, size: tuple[int, int]
) -> None:
    host, ann = host_and_guest(server, new_page, f"hands-{size[0]}", "ann", size)
    ann.locator("#raise-hand").click()
    expect(host.locator("#requests .request-name")).to_have_text(["Ann"])
    for target in ("#chat-form button[type=submit]", "#end-room", "#requests .accept"):
        host.locator(target).scroll_into_view_if_needed()
        assert not covered(host, target), target


def test_the_host_mutes_every_speaker_at_once(server: LiveServer, new_page) -> None:
    server.create_room("mute-all")
    host = new_page()
    host.goto(server.embed_url("mute-all", "hana", role="host"))
    speakers = [new_page() for _ in range(2)]
    for index, page in enumerate(speakers, start=1):
        page.goto(server.embed_url("mute-all", f"speaker{index}"))
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        page.evaluate(f"() => window.liveaudio.request('seat.take', {{index: {index}}})")
        page.evaluate("() => window.liveaudio.request('microphone.turnOn', {isOn: true})")
        expect(page.locator("#mic-toggle")).to_have_text("Mute mic")
    host.locator("#mute-all").click()
    for page in speakers:
        expect(page.locator("#mic-toggle")).to_have_text("Unmute mic")
    expect(speakers[0].locator("#mute-all")).to_have_count(0)  # a host's button only


def test_one_click_one_message_and_none_over_the_header(server: LiveServer, new_page) -> None:
    """A raised hand with no host said it twice: a notice over the Lobby link and a toast."""
    server.create_room("one-message")
    ann = new_page()
    ann.goto(server.embed_url("one-message", "ann"))
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    ann.evaluate(
        "() => document.addEventListener('liveaudio:event', (e) => {"
        " window.seenEvents = [...(window.seenEvents || []), ...(e.detail.events || [])]; })"
    )
    ann.locator("#raise-hand").click()
    expect(ann.locator("#toast")).to_contain_text("no host")
    # The asker also gets the seed's onTakingRequestFailed event (for the SDK): once it has
    # come, the page must not have made a second message of it.
    ann.wait_for_function(
        "() => (window.seenEvents || []).some("
        "(e) => e.type === 'seat.audience.onTakingRequestFailed')"
    )
    expect(ann.locator("#notice")).to_be_hidden()
    header = ann.locator(".room-header").bounding_box()
    toast = ann.locator("#toast").bounding_box()
    assert toast["y"] > header["y"] + header["height"], (toast, header)


def test_the_host_copies_the_rooms_link(server: LiveServer, new_page) -> None:
    host = new_page()
    host.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_in_admin(host, server)
    host.goto(server.url + "/rooms/demo/")
    expect(host.locator("#connection")).to_have_attribute("data-state", "live")
    host.locator("#share-room").click()
    expect(host.locator("#notice")).to_contain_text("Link copied")
    assert host.evaluate("() => navigator.clipboard.readText()") == server.url + "/rooms/demo/"
    # An embedded room has no address of its own to share: the integrator's page is the way in.
    server.create_room("share-embed")
    guest = new_page()
    guest.goto(server.embed_url("share-embed", "gus"))
    expect(guest.locator("#connection")).to_have_attribute("data-state", "live")
    expect(guest.locator("#share-room")).to_have_count(0)


def test_confirmations_are_the_rooms_own_dialog_with_the_configs_texts(
    server: LiveServer, new_page
) -> None:
    """Ending the room asked with the browser's window.confirm: no texts of the config's,
    blocking the page, and shown as "127.0.0.1 says"."""
    server.create_room("dialogs")
    host = new_page()
    native: list[str] = []
    host.on("dialog", lambda dialog: (native.append(dialog.message), dialog.dismiss()))
    host.goto(server.embed_url("dialogs", "hana", role="host"))
    expect(host.locator("#connection")).to_have_attribute("data-state", "live")
    dialog = host.locator("#confirm-dialog")
    host.locator("#end-room").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-title")).to_have_text("End the room")
    expect(dialog.locator("#confirm-message")).to_have_text("End the room for everyone?")
    expect(dialog.locator("#confirm-ok")).to_have_text("End")
    expect(dialog.locator("#confirm-cancel")).to_be_focused()  # the safe answer first
    host.keyboard.press("Escape")  # as Cancel
    expect(dialog).to_be_hidden()
    expect(host.locator("#connection")).to_have_attribute("data-state", "live")
    host.locator("#end-room").click()
    dialog.locator("#confirm-ok").click()
    expect(host.locator("#end-state")).to_have_attribute("data-state", "roomEnded")
    assert native == []


def test_the_user_a_host_acts_on_is_told(server: LiveServer, new_page) -> None:
    """A host's mute, a removal from the seat and an invitation each say so, and who; a
    raised hand shows its place in the queue."""
    server.create_room("told")
    host, ann, ben = new_page(), new_page(), new_page()
    host.goto(server.embed_url("told", "hana", role="host"))
    for page, user in ((ann, "ann"), (ben, "ben")):
        page.goto(server.embed_url("told", user))
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    ann.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    ann.evaluate("() => window.liveaudio.request('microphone.turnOn', {isOn: true})")
    expect(ann.locator("#mic-toggle")).to_have_text("Mute mic")

    host.evaluate("() => window.liveaudio.request('seat.host.mute', {targetIndex: 2})")
    expect(ann.locator("#notice")).to_have_text("A host turned your microphone off.")
    expect(ben.locator("#notice")).to_be_hidden()  # only the one it happened to
    host.evaluate("() => window.liveaudio.request('seat.host.removeSpeaker', {userID: 'ann'})")
    expect(ann.locator("#notice")).to_have_text("Hana moved you to the audience.")

    host.evaluate("() => window.liveaudio.request('seat.host.inviteToTake', {userID: 'ben'})")
    expect(ben.locator("#invitation")).to_contain_text("Hana invites you to take a seat.")
    ben.locator("#decline-invitation").click()

    host.evaluate("() => window.liveaudio.request('seat.host.close', {targetIndex: -1})")
    ann.locator("#raise-hand").click()
    expect(ann.locator("#queue-position")).to_have_text("Next in line")
    ben.locator("#raise-hand").click()
    expect(ben.locator("#queue-position")).to_have_text("Number 2 in line")
    ann.locator("#lower-hand").click()
    expect(ben.locator("#queue-position")).to_have_text("Next in line")


def test_a_host_asks_a_muted_speaker_to_turn_the_microphone_on(
    server: LiveServer, new_page
) -> None:
    """The seed's turn-on-by-others request, from the seat: only a question; it is on once
    the speaker says yes in the room's own dialog."""
    host, ann = host_and_guest(server, new_page, "ask-unmute", "ann")
    ann.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    seat = host.locator('#seats .seat-cell[data-user-id="ann"]')
    expect(seat.locator(".mic")).to_have_attribute("data-on", "false")
    seat.locator(".seat-ask-unmute").click()
    dialog = ann.locator("#confirm-dialog")
    expect(dialog.locator("#confirm-message")).to_have_text(
        "Hana asks you to turn your microphone on."
    )
    dialog.locator("#confirm-ok").click()
    expect(seat.locator(".mic")).to_have_attribute("data-on", "true")
    expect(seat.locator(".seat-ask-unmute")).to_have_count(0)  # now: mute, not ask
    expect(ann.locator('#seats .seat-cell[data-user-id="ann"] .seat-ask-unmute')).to_be_hidden()


def test_the_host_sets_the_rooms_topic_and_the_listeners_see_it(
    server: LiveServer, new_page
) -> None:
    host, ann = host_and_guest(server, new_page, "topic", "ann")
    expect(ann.locator("#room-topic")).to_be_hidden()
    expect(ann.locator(".topic-edit")).to_be_hidden()  # a host's tool
    host.locator(".topic-edit summary").click()
    host.locator("#topic-form input[name=topic]").fill("Jazz <b>standards</b>")
    host.locator("#topic-form button").click()
    for page in (host, ann):
        expect(page.locator("#room-topic")).to_have_text("Jazz <b>standards</b>")
    assert ann.locator("#room-topic b").count() == 0


def test_a_listener_sets_the_rooms_volume_and_a_speaker_picks_a_microphone(
    server: LiveServer, new_page
) -> None:
    server.create_room("audio-settings")
    page = new_page()
    page.goto(server.embed_url("audio-settings", "sam"))
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.locator("#audio-settings summary").click()
    page.locator("#output-volume").fill("30")
    assert page.evaluate("() => document.getElementById('room-audio').volume") == 0.3
    page.reload()  # remembered, in this browser
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert page.evaluate("() => document.getElementById('room-audio').volume") == 0.3

    page.evaluate("() => window.liveaudio.request('seat.take', {index: 2})")
    page.evaluate("() => window.liveaudio.request('microphone.turnOn', {isOn: true})")
    page.wait_for_function(
        "() => window.liveaudio.pc.getSenders().some((s) => s.track?.readyState === 'live')"
    )
    page.locator("#audio-settings summary").click()
    picker = page.locator("#microphone-picker")
    expect(picker.locator("option").first).to_be_attached()
    devices = picker.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    choice = devices[-1]
    picker.select_option(choice)
    page.wait_for_function(
        "(id) => window.liveaudio.pc.getSenders().some((s) => s.track?.getSettings().deviceId"
        " === id && s.track.readyState === 'live')",
        arg=choice,
    )


def test_a_reaction_bursts_over_the_senders_avatar_on_every_page(
    server: LiveServer, new_page
) -> None:
    host, ann = host_and_guest(server, new_page, "reactions", "ann")
    ann.locator("#reactions summary").click()
    # Ann is in the audience: the burst rises from her avatar under the stage, on her page
    # and on the host's (each looked at in front: a page behind runs no animation).
    for page in (ann, host):
        page.bring_to_front()
        ann.locator("#reactions .reaction", has_text="🎉").click()
        burst = page.locator('#seats .listener[data-user-id="ann"] .reaction-burst')
        expect(burst).to_have_text("🎉")
        expect(burst).to_have_count(0, timeout=5_000)  # and goes
