"""Issue 5 in the browser: the embed SDK in an integrator's page on another origin.

Two users (a host and a listener, in two browser contexts) each embed the room with
``LiveAudioRoom.create`` in a page served from an origin the app allows; every check drives
the room only through the controller and reads the result through the *other* user's
controller and events. A page from an origin the app does not list can neither frame the
room nor drive one.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rooms.models import App
from rooms.tokens import token_mint
from tests.servers import LiveServer, free_port

pytestmark = pytest.mark.browser

PARENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Integrator</title></head>
<body style="margin:0"><h1>An integrator's page</h1>
<div id="room" style="width: 900px; height: 640px"></div></body></html>
"""

# The integrator's code under test: it records every event and answers the deciding ones
# from window.decisions (true / false, or undefined: the widget's own dialog decides).
HARNESS = """
window.seen = [];
window.decisions = {};
window.streamed = null;
const plain = (args) => JSON.parse(JSON.stringify(args, (k, v) =>
  typeof v === "function" ? undefined : v));
const record = (name) => (...args) => { window.seen.push({ name, args: plain(args) }); };
// A room command's bytes as [byte, ...] (and whether they came as a Uint8Array), for JSON.
const bytesAsLists = (event) => ({ ...event, messages: event.messages.map((m) =>
  ({ ...m, message: Array.from(m.message), isBytes: m.message instanceof Uint8Array })) });
const decide = (name, key) => (...args) => {
  record(name)(...args);
  const decision = window.decisions[key];
  return key === "leave" ? Promise.resolve(decision) : decision;  // a Promise works too
};
const events = {
  onLeaveConfirmation: decide("onLeaveConfirmation", "leave"),
  onEnded: (reason, event) => {
    record("onEnded")(reason, event);
    if (window.callDefaultOnEnded) event.defaultAction();
  },
  onError: record("onError"),
  room: {
    onStateChanged: record("room.onStateChanged"),
    onPropertiesUpdated: record("room.onPropertiesUpdated"),
    onCommandReceived: (event) => record("room.onCommandReceived")(bytesAsLists(event)),
  },
  user: {
    onEnter: record("user.onEnter"),
    onLeave: record("user.onLeave"),
    onCountOrPropertyChanged: record("user.onCountOrPropertyChanged"),
    onRoleChanged: record("user.onRoleChanged"),
  },
  seat: {
    onChanged: record("seat.onChanged"),
    onClosed: record("seat.onClosed"),
    onOpened: record("seat.onOpened"),
    host: {
      onTakingRequested: record("seat.host.onTakingRequested"),
      onTakingRequestCanceled: record("seat.host.onTakingRequestCanceled"),
      onTakingInvitationRejected: record("seat.host.onTakingInvitationRejected"),
      onTakingInvitationFailed: record("seat.host.onTakingInvitationFailed"),
    },
    audience: {
      onTakingRequestRejected: record("seat.audience.onTakingRequestRejected"),
      onTakingRequestFailed: record("seat.audience.onTakingRequestFailed"),
      onTakingInvitationReceived: decide("seat.audience.onTakingInvitationReceived", "invite"),
    },
  },
  audioVideo: {
    onMicrophoneTurnOnByOthersConfirmation: decide("onMicrophoneTurnOnByOthersConfirmation", "mic"),
    onMicrophoneStateChanged: record("audioVideo.onMicrophoneStateChanged"),
  },
  inRoomMessage: { onReceived: record("inRoomMessage.onReceived") },
  minimize: { onStateChanged: record("minimize.onStateChanged") },
  media: { onPlayStateChanged: record("media.onPlayStateChanged") },
};
window.join = async (options) => {
  window.room = LiveAudioRoom.create(document.getElementById("room"), { ...options, events });
  try {
    await window.room.ready;
    return { ok: true };
  } catch (e) {
    return { ok: false, code: e.code, message: e.message, fields: e.fields };
  }
};
window.c = () => window.room.controller;
window.attempt = async (fn) => {
  try {
    return { ok: true, result: await fn() };
  } catch (e) {
    return { ok: false, code: e.code, message: e.message };
  }
};
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class StaticSite:
    """An integrator's web server: plain files, on its own port (so its own origin)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        handler = partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def sites(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """The integrator's site (allowed by the demo app) and a stranger's (not allowed)."""
    root = tmp_path_factory.mktemp("integrator")
    (root / "index.html").write_text(PARENT_PAGE)
    allowed, stranger = StaticSite(root), StaticSite(root)
    server.manage("setup_demo", "--base-url", server.url, "--demo-port", str(allowed.port))
    yield allowed, stranger
    allowed.close()
    stranger.close()


@pytest.fixture(scope="module")
def sign(server: LiveServer) -> str:
    """The demo app's appSign, as the integrator's backend holds it."""
    return server.app_sign()


def mint(sign: str, room_id: str, user_id: str, *, role: str | None = None, ttl: int = 600) -> str:
    """A token, minted as an integrator's backend does (rooms.tokens is the Python helper)."""
    app = App(app_id=1234567, app_sign=sign)
    return token_mint(
        app=app,
        room_id=room_id,
        user_id=user_id,
        user_name=user_id.title(),
        role=role,
        ttl_seconds=ttl,
    )


def open_parent(page: Page, site_url: str, server: LiveServer) -> None:
    page.goto(site_url + "/")
    page.add_script_tag(url=server.url + "/static/liveaudio/embed.js")
    page.add_script_tag(content=HARNESS)


def join(
    page: Page, server: LiveServer, room_id: str, user_id: str, preset: str, **credentials
) -> dict:
    options = {
        "server": server.url,
        "appID": 1234567,
        "roomID": room_id,
        "userID": user_id,
        "userName": user_id.title(),
        **credentials,
    }
    return page.evaluate(
        "([o, preset]) => join({ ...o, config: o.config ?? LiveAudioRoom.config[preset]() })",
        [options, preset],
    )


def call(page: Page, expression: str) -> dict:
    """A controller call, settled: {ok, result} or {ok: false, code, message}."""
    return page.evaluate(f"() => attempt(() => {expression})")


def ok(page: Page, expression: str):
    answer = call(page, expression)
    assert answer["ok"], answer
    return answer["result"]


def read(page: Page, expression: str):
    return page.evaluate(f"() => {expression}")


def until(page: Page, expression: str) -> None:
    """Wait for a condition in the page (generously: it returns as soon as it holds)."""
    page.wait_for_function(f"() => {expression}", timeout=20_000)


def seen(page: Page, name: str, count: int = 1) -> list:
    """Wait until the event fired ``count`` times; its calls' arguments."""
    until(page, f"seen.filter(e => e.name === {json.dumps(name)}).length >= {count}")
    return [e["args"] for e in read(page, "seen") if e["name"] == name]


def test_the_controller_drives_the_room_from_another_origin(server, sites, sign, new_page) -> None:
    allowed, _ = sites
    host, ann = new_page(), new_page()
    open_parent(host, allowed.url, server)
    open_parent(ann, allowed.url, server)

    # The host opens a room that does not exist yet (a test app: the appSign will do); the
    # listener joins with a token from the integrator's backend.
    room = "embed-jam"
    assert join(host, server, room, "hana", "host", appSign=sign) == {"ok": True}
    assert join(ann, server, room, "ann", "audience", token=mint(sign, room, "ann")) == {"ok": True}
    iframe = host.locator("#room iframe")
    expect(iframe).to_have_attribute("allow", "microphone; autoplay")
    assert seen(host, "user.onEnter")[-1] == [{"id": "ann", "name": "Ann"}]
    assert seen(ann, "room.onStateChanged")[0] == ["connected"]

    # Getters are synchronous and agree across the two users.
    assert read(host, "c().seat.localIsHost") is True
    assert read(host, "c().seat.localHasHostPermissions") is True
    assert read(ann, "c().seat.localIsAudience") is True
    assert read(ann, "c().seat.localHasHostPermissions") is False
    assert read(ann, "c().seat.getUserByIndex(0)") == {"id": "hana", "name": "Hana"}
    assert read(ann, "c().seat.getSeatIndexByUserID('hana')") == 0
    assert read(ann, "c().seat.getSeatIndexByUserID('ann')") == -1
    assert read(ann, "c().seat.userMapNotifier.value") == {"0": "hana"}
    assert 0 not in read(ann, "c().seat.getEmptySeats()")
    assert read(ann, "c().seat.getEmptySeats({includeHostSeats: true})") == read(
        ann, "c().seat.getEmptySeats()"
    )
    # (a function: Playwright would call the unsubscribe that an expression returns)
    host.evaluate(
        "() => { c().message.stream().subscribe((list) => { window.streamed = list; }); }"
    )

    # The host locks every seat: the listener sees locked seats and seat.onClosed.
    assert ok(host, "c().seat.host.close()") is True
    seen(ann, "seat.onClosed")
    assert read(ann, "c().roomState.rows.flat().every((s) => s.locked)") is True
    refused = call(ann, "c().seat.audience.take(3)")
    assert (refused["ok"], refused["code"]) == (False, "seat_locked")

    # A raised hand reaches the host, who accepts it: Ann is on a seat, microphone on.
    assert ok(ann, "c().seat.audience.applyToTake()") is True
    assert seen(host, "seat.host.onTakingRequested")[-1] == [{"id": "ann", "name": "Ann"}]
    assert ok(host, "c().seat.host.acceptTakingRequest('ann')") is True
    until(host, "c().seat.getSeatIndexByUserID('ann') > 0")
    until(ann, "c().seat.localIsSpeaker && c().audioVideo.microphone.localState")
    assert seen(host, "user.onRoleChanged")[-1] == [{"id": "ann", "name": "Ann"}, "speaker"]
    members = seen(host, "user.onCountOrPropertyChanged")[-1][0]
    assert {"id": "ann", "name": "Ann", "role": "speaker", "online": True} in [
        {k: m[k] for k in ("id", "name", "role", "online")} for m in members
    ]
    ann_seat = read(host, "c().seat.getSeatIndexByUserID('ann')")
    seen(host, "seat.onChanged")
    assert read(host, f"c().seat.userMapNotifier.value['{ann_seat}']") == "ann"

    # Chat: Ann's message reaches the host's message.stream and list.
    assert ok(ann, "c().message.send('hello from <b>Ann</b>')") is True
    until(host, "(window.streamed || []).some((m) => m.message === 'hello from <b>Ann</b>')")
    message = read(host, "c().message.list().at(-1)")
    assert (message["user"], message["state"]) == ({"id": "ann", "name": "Ann"}, "success")
    assert seen(host, "inRoomMessage.onReceived")[-1][0]["message"] == "hello from <b>Ann</b>"

    # The host mutes Ann (by index, then by ID after asking her to turn it on herself).
    mic = "c().audioVideo.microphone"
    host.evaluate(
        "() => { window.annMic = []; const notifier = c().audioVideo.microphone"
        ".stateNotifier('ann'); notifier.subscribe((on) => window.annMic.push(on)); }"
    )
    assert ok(host, f"c().seat.host.mute({{targetIndex: {ann_seat}, muted: true}})") is True
    until(ann, f"!{mic}.localState")
    until(host, "window.annMic.at(-1) === false")
    assert seen(host, "audioVideo.onMicrophoneStateChanged")[-1] == [
        {"id": "ann", "name": "Ann"},
        False,
        {"byHost": True},
    ]
    assert read(host, f"c().seat.muteStateNotifier({ann_seat}).value") is True
    # Asking her to turn it on: her callback says no, then yes.
    ann.evaluate("decisions.mic = false")
    ok(host, f"{mic}.turnOn(true, {{userID: 'ann'}})")
    assert seen(ann, "onMicrophoneTurnOnByOthersConfirmation")[-1] == [
        {"id": "hana", "name": "Hana"}
    ]
    # Her next message goes out after any answer to that: once the host has it, her
    # microphone would be on already had she said yes.
    ok(ann, "c().message.send('still muted')")
    until(host, "window.streamed.some((m) => m.message === 'still muted')")
    assert read(host, f"{mic}.state('ann')") is False
    ann.evaluate("decisions.mic = true")
    ok(host, f"{mic}.turnOn(true, {{userID: 'ann'}})")
    seen(ann, "onMicrophoneTurnOnByOthersConfirmation", 2)
    until(host, f"{mic}.state('ann') && window.annMic.at(-1) === true")
    until(ann, f"{mic}.localStateNotifier.value === true")
    assert ok(host, "c().seat.host.muteByUserID('ann', {muted: true})") is True
    until(ann, f"!{mic}.localState")
    # Her own microphone, through her controller.
    assert ok(ann, f"{mic}.switchState()") is True
    until(host, f"{mic}.state('ann')")
    assert ok(ann, f"{mic}.turnOn(false)") is True
    until(host, f"!{mic}.state('ann')")

    # Muting locally changes only what the host hears.
    assert ok(host, f"c().seat.muteLocally({{targetIndex: {ann_seat}, muted: true}})") is True
    assert read(host, f"c().seat.muteStateNotifier({ann_seat}, {{isLocally: true}}).value")
    assert not read(ann, f"c().seat.muteStateNotifier({ann_seat}, {{isLocally: true}}).value")
    assert ok(host, "c().seat.muteLocallyByUserID('ann', {muted: false})") is True
    assert not read(host, f"c().seat.muteStateNotifier({ann_seat}, {{isLocally: true}}).value")

    # Ann leaves her seat; the host invites her back, she declines, then accepts.
    assert ok(ann, "c().seat.speaker.leave({showDialog: false})") is True
    until(host, "c().seat.getSeatIndexByUserID('ann') === -1")
    ann.evaluate("decisions.invite = false")
    assert ok(host, "c().seat.host.inviteToTake('ann')") is True
    assert seen(ann, "seat.audience.onTakingInvitationReceived")[-1] == [
        {"id": "hana", "name": "Hana"}
    ]
    assert seen(host, "seat.host.onTakingInvitationRejected")[-1] == [{"id": "ann", "name": "Ann"}]
    ann.evaluate("decisions.invite = true")
    assert ok(host, "c().seat.host.inviteToTake('ann')") is True
    until(host, "c().seat.getSeatIndexByUserID('ann') > 0")

    # The host takes her off the seat; an invitation her page leaves to the widget's prompt
    # she accepts through the controller.
    assert ok(host, "c().seat.host.removeSpeaker('ann', {showDialogConfirm: false})") is True
    until(ann, "c().seat.localIsAudience")
    ann.evaluate("decisions.invite = undefined")
    assert ok(host, "c().seat.host.inviteToTake('ann')") is True
    seen(ann, "seat.audience.onTakingInvitationReceived", 3)
    assert ok(ann, "c().seat.audience.acceptTakingInvitation()") is True
    until(host, "c().seat.getSeatIndexByUserID('ann') > 0")
    ok(host, "c().seat.host.removeSpeaker('ann', {showDialogConfirm: false})")
    until(ann, "c().seat.localIsAudience")

    # Requests the host rejects, and requests Ann withdraws.
    ok(ann, "c().seat.audience.applyToTake()")
    seen(host, "seat.host.onTakingRequested", 2)
    assert ok(host, "c().seat.host.rejectTakingRequest('ann')") is True
    seen(ann, "seat.audience.onTakingRequestRejected")
    ok(ann, "c().seat.audience.applyToTake()")
    seen(host, "seat.host.onTakingRequested", 3)
    assert ok(ann, "c().seat.audience.cancelTakingRequest()") is True
    canceled = seen(host, "seat.host.onTakingRequestCanceled")
    assert {"id": "ann", "name": "Ann"} in [args[0] for args in canceled]

    # A lock change drops a raised hand: both sides are told.
    ok(ann, "c().seat.audience.applyToTake()")
    seen(host, "seat.host.onTakingRequested", 4)
    ok(host, "c().seat.host.open({targetIndex: 7})")
    assert seen(ann, "seat.audience.onTakingRequestFailed")[-1] == [{"reason": "lockChanged"}]
    # The host has heard "rejected" and "canceled" already: wait for this third one.
    assert seen(host, "seat.host.onTakingRequestCanceled", 3)[-1] == [
        {"id": "ann", "name": "Ann"},
        {"reason": "lockChanged"},
    ]

    # Unlocked again, Ann takes a seat herself.
    assert ok(host, "c().seat.host.open()") is True
    seen(ann, "seat.onOpened")
    assert ok(ann, "c().seat.audience.take(3)") is True
    until(host, "c().seat.getUserByIndex(3)?.id === 'ann'")

    # Only this user's member list hides someone.
    ok(host, "c().hideInMemberList(['ann'])")
    host_row = host.frame_locator("#room iframe").locator('#members li[data-user-id="ann"]')
    ann_row = ann.frame_locator("#room iframe").locator('#members li[data-user-id="ann"]')
    expect(host_row).to_be_hidden()
    expect(ann_row).to_be_visible()

    # (The media player is test_media_player.py's; SEI is test_sei_between_two_origins's.)
    assert read(host, "c().media.volume") == 30
    assert read(host, "c().media.volumeNotifier.value") == 30

    # Minimized: a small bar in the host's page; the iframe stays (the audio goes on).
    assert read(host, "c().minimize.minimize()") is True
    assert read(host, "[c().minimize.state, c().minimize.isMinimizing]") == ["minimizing", True]
    assert seen(host, "minimize.onStateChanged")[-1] == ["minimizing"]
    bar = host.locator(".liveaudio-minimized")
    expect(bar).to_be_visible()
    expect(iframe).to_have_count(1)
    assert iframe.evaluate("(f) => getComputedStyle(f).display") != "none"
    room_frame = next(f for f in host.frames if f.url.startswith(server.url))
    room_frame.wait_for_function("() => window.liveaudio.mediaState === 'connected'")
    until(host, "document.querySelector('.liveaudio-minimized .liveaudio-mic').textContent")
    box = bar.bounding_box()
    host.mouse.move(box["x"] + 6, box["y"] + 6)
    host.mouse.down()
    host.mouse.move(box["x"] - 200, box["y"] - 150, steps=5)
    host.mouse.up()
    moved = bar.bounding_box()
    assert moved["x"] < box["x"] - 150 and moved["y"] < box["y"] - 100
    was_on = read(host, f"{mic}.localState")
    bar.locator(".liveaudio-mic").click()
    until(ann, f"{mic}.state('hana') === {json.dumps(not was_on)}")
    assert read(host, "c().minimize.restore()") is True
    expect(bar).to_have_count(0)
    assert read(host, "c().minimize.state") == "inAudioRoom"
    assert iframe.bounding_box()["width"] > 800

    # Leaving asks the integrator's onLeaveConfirmation: no, then yes. She had an
    # invitation pending: the host hears that it failed.
    ok(host, "c().seat.host.removeSpeaker('ann', {showDialogConfirm: false})")
    until(ann, "c().seat.localIsAudience")
    ok(host, "c().seat.host.inviteToTake('ann')")
    seen(ann, "seat.audience.onTakingInvitationReceived", 4)
    ann.evaluate("decisions.leave = false")
    assert ok(ann, "c().leave()") is False
    assert read(ann, "c().seat.localIsAudience") is True
    # A callback that does not decide (undefined) leaves it to the widget's own dialog, in
    # the room (an in-page <dialog>, with the config's texts): Ann cancels it.
    ann.evaluate("decisions.leave = undefined")
    ann.evaluate("() => { window.leaving = attempt(() => c().leave()); }")
    dialog = ann.frame_locator("#room iframe").locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-message")).to_have_text("Leave the room?")
    dialog.locator("#confirm-cancel").click()
    assert ann.evaluate("() => window.leaving") == {"ok": True, "result": False}
    ann.evaluate("decisions.leave = true")
    assert ok(ann, "c().leave()") is True
    assert seen(ann, "onEnded")[-1][0] == "localLeave"
    assert seen(host, "user.onLeave")[-1] == [{"id": "ann", "name": "Ann"}]
    assert seen(host, "seat.host.onTakingInvitationFailed")[-1] == [
        {"id": "ann", "name": "Ann"},
        {"reason": "left"},
    ]
    left = call(ann, "c().seat.audience.take(4)")
    assert (left["ok"], left["code"]) == (False, "room_left")

    # The host leaves while minimized: onEnded says so; its default action hides the bar.
    host.evaluate("window.callDefaultOnEnded = true")
    read(host, "c().minimize.minimize()")
    ok(host, "c().leave({showConfirmation: false})")
    ended = seen(host, "onEnded")[-1]
    assert ended[0] == "localLeave" and ended[1]["isFromMinimizing"] is True
    expect(host.locator(".liveaudio-minimized")).to_have_count(0)
    assert read(host, "c().minimize.state") == "idle"


def host_and_audience(server, sites, sign, new_page, room: str) -> tuple[Page, Page]:
    """Hana (host, by appSign) and Ann (audience, by token) in `room`, each embedding it in a
    parent page of the allowed origin."""
    allowed, _ = sites
    host, ann = new_page(), new_page()
    open_parent(host, allowed.url, server)
    open_parent(ann, allowed.url, server)
    assert join(host, server, room, "hana", "host", appSign=sign) == {"ok": True}
    assert join(ann, server, room, "ann", "audience", token=mint(sign, room, "ann")) == {"ok": True}
    return host, ann


def test_room_properties_between_two_origins(server, sites, sign, new_page) -> None:
    """Issue 12, part 1, through the SDK only: what one user sets the other hears (callback
    and stream) and reads; the owner rule and a limit come back as the server's codes."""
    room = "embed-props"
    host, ann = host_and_audience(server, sites, sign, new_page, room)
    host.evaluate(
        "() => { window.streamedProps = [];"
        " c().room.propertiesStream().subscribe((e) => window.streamedProps.push(e)); }"
    )

    change = f"{{roomID: '{room}', key: 'gift', value: 'rose', isDeleteAfterOwnerLeft: true}}"
    assert ok(ann, f"c().room.updateProperty({change})") is True
    expected = {"roomID": room, "setProperties": {"gift": "rose"}, "deleteProperties": {}}
    assert seen(host, "room.onPropertiesUpdated")[-1] == [expected]
    until(host, "window.streamedProps.length === 1")
    assert read(host, "window.streamedProps") == [expected]
    assert ok(host, f"c().room.queryProperties({{roomID: '{room}'}})") == {"gift": "rose"}

    # Ann's key: the host needs isForce; a key too long is refused by its limit; nothing set.
    taken = call(host, f"c().room.updateProperty({{roomID: '{room}', key: 'gift', value: 'x'}})")
    assert (taken["ok"], taken["code"]) == (False, "property_owned")
    too_long = f"{{roomID: '{room}', roomProperties: {{a: '1', ['k'.repeat(17)]: '2'}}}}"
    long_key = call(host, f"c().room.updateProperties({too_long})")
    assert (long_key["ok"], long_key["code"]) == (False, "property_key_invalid")
    assert "16 bytes" in long_key["message"]
    batch = f"{{roomID: '{room}', roomProperties: {{song: 'Ode', vote: '3'}}}}"
    assert ok(host, f"c().room.updateProperties({batch})") is True
    assert seen(ann, "room.onPropertiesUpdated", 2)[-1][0]["setProperties"] == {
        "song": "Ode",
        "vote": "3",
    }
    forced = f"{{roomID: '{room}', keys: ['gift'], isForce: true}}"
    assert ok(host, f"c().room.deleteProperties({forced})") is True
    assert seen(ann, "room.onPropertiesUpdated", 3)[-1][0]["deleteProperties"] == {"gift": "rose"}
    wrong = call(ann, "c().room.queryProperties({roomID: 'elsewhere'})")
    assert (wrong["ok"], wrong["code"]) == (False, "wrong_room")

    # Ann's own delete-after key goes when she leaves; the host hears it.
    assert ok(ann, f"c().room.updateProperty({change})") is True
    seen(host, "room.onPropertiesUpdated", 4)
    ok(ann, "c().leave({showConfirmation: false})")
    gone = seen(host, "room.onPropertiesUpdated", 5)[-1][0]
    assert gone["deleteProperties"] == {"gift": "rose"}
    assert ok(host, f"c().room.queryProperties({{roomID: '{room}'}})") == {
        "song": "Ode",
        "vote": "3",
    }
    until(host, "window.streamedProps.length === 5")


def test_room_commands_between_two_origins(server, sites, sign, new_page) -> None:
    """Issue 12, part 2, through the SDK only: the bytes one user sends reach the other as a
    Uint8Array (callback and stream), never the sender; a refused one is the server's code."""
    room = "embed-commands"
    host, ann = host_and_audience(server, sites, sign, new_page, room)
    ann.evaluate(
        "() => { window.streamedCommands = [];"
        " c().room.commandReceivedStream().subscribe((e) =>"
        " window.streamedCommands.push(Array.from(e.messages[0].message))); }"
    )

    send = f"c().room.sendCommand({{roomID: '{room}', command: new Uint8Array([0, 255, 7])}})"
    assert ok(host, send) is True
    (event,) = seen(ann, "room.onCommandReceived")[-1]
    assert event["roomID"] == room
    (message,) = event["messages"]
    assert message["message"] == [0, 255, 7] and message["isBytes"] is True
    assert message["senderUserID"] == "hana" and message["orderKey"] >= 1
    until(ann, "window.streamedCommands.length === 1")
    assert read(ann, "window.streamedCommands") == [[0, 255, 7]]

    too_large = call(
        host, f"c().room.sendCommand({{roomID: '{room}', command: new Uint8Array(1025)}})"
    )
    assert (too_large["ok"], too_large["code"]) == (False, "command_too_large")
    as_text = call(host, f"c().room.sendCommand({{roomID: '{room}', command: 'hi'}})")
    assert (as_text["ok"], as_text["code"]) == (False, "bad_request")
    wrong = call(ann, "c().room.sendCommand({roomID: 'elsewhere', command: new Uint8Array(1)})")
    assert (wrong["ok"], wrong["code"]) == (False, "wrong_room")
    # Ann's command reaches the host, after the refused ones, and never Ann herself.
    assert ok(ann, f"c().room.sendCommand({{roomID: '{room}', command: new Uint8Array([9])}})")
    (back,) = seen(host, "room.onCommandReceived")[-1]
    assert [m["message"] for m in back["messages"]] == [[9]]
    assert back["messages"][0]["orderKey"] > message["orderKey"]
    assert len(seen(ann, "room.onCommandReceived")) == 1
    assert len(seen(host, "room.onCommandReceived")) == 1


def test_sei_between_two_origins(server, sites, sign, new_page) -> None:
    """Issue 12, part 3, through the SDK only: the host's SEI reaches the listener's
    seiStream (once its audio has played there, or after the page's longest hold), never the
    host's own; a listener may not send one, and a refused one is the server's code."""
    room = "embed-sei"
    host, ann = host_and_audience(server, sites, sign, new_page, room)
    subscribe = (
        "() => { window.streamedSEI = [];"
        " c().audioVideo.seiStream().subscribe((e) => window.streamedSEI.push(e)); }"
    )
    host.evaluate(subscribe)
    ann.evaluate(subscribe)
    until(host, "c().seat.localIsHost && c().audioVideo.microphone.localState")

    refused = call(ann, "c().audioVideo.sendSEI({beat: 1})")
    assert (refused["ok"], refused["code"]) == (False, "not_in_mix")
    assert ok(host, "c().audioVideo.sendSEI({lyric: 'Ode to <b>joy</b>', beat: 1})") is True
    until(ann, "window.streamedSEI.length === 1")
    assert read(ann, "window.streamedSEI") == [
        {
            "typeIdentifier": "custom",
            "senderID": "hana",
            "sei": {"lyric": "Ode to <b>joy</b>", "beat": 1},
            "streamID": f"{room}_hana_main",
            "streamType": "main",
        }
    ]
    too_large = call(host, "c().audioVideo.sendSEI({text: 'x'.repeat(4100)})")
    assert (too_large["ok"], too_large["code"]) == (False, "sei_too_large")
    no_media = call(host, "c().audioVideo.sendSEI({line: 1}, {streamType: 'media'})")
    assert (no_media["ok"], no_media["code"]) == (False, "not_in_mix")
    # The host's second one comes after the refused ones; the host never hears their own.
    assert ok(host, "c().audioVideo.sendSEI({beat: 2})") is True
    until(ann, "window.streamedSEI.length === 2")
    assert read(ann, "window.streamedSEI[1].sei") == {"beat": 2}
    assert read(host, "window.streamedSEI") == []


def test_ready_rejects_with_the_servers_reason(server, sites, sign, new_page) -> None:
    allowed, _ = sites
    page = new_page()
    open_parent(page, allowed.url, server)
    room = "embed-expiry"
    token = mint(sign, room, "bea", role="host")
    bad = join(page, server, room, "bea", "host", token=token, config={"seat": {"rows": 2}})
    assert (bad["ok"], bad["code"]) == (False, "bad_config")
    assert {"field": "seat.rows", "message": "is not a config field"} in bad["fields"]
    forged = join(page, server, room, "bea", "host", token=token[:-4] + "AAAA")
    assert (forged["ok"], forged["code"]) == (False, "token_invalid")
    expect(page.locator("#room iframe")).to_have_count(0)

    # A token that expires while she is in the room (she opens it): onEnded says why.
    short = mint(sign, room, "bea", role="host", ttl=3)
    assert join(page, server, room, "bea", "host", token=short) == {"ok": True}
    page.wait_for_function("() => seen.some((e) => e.name === 'onEnded')", timeout=20_000)
    assert seen(page, "onEnded")[-1][0] == "tokenExpired"
    expired = call(page, "c().seat.audience.take(2)")
    assert (expired["ok"], expired["code"]) == (False, "room_left")
    page.evaluate("() => window.room.destroy()")
    expect(page.locator("#room iframe")).to_have_count(0)


def test_the_sdk_is_also_an_es_module(server, sites, new_page) -> None:
    allowed, _ = sites
    page = new_page()
    page.goto(allowed.url + "/")
    exported = page.evaluate(
        """async (url) => {
          const module = await import(url);
          const sdk = module.LiveAudioRoom;
          return [typeof sdk.create, module.default === sdk, sdk.config.host().role];
        }""",
        server.url + "/static/liveaudio/embed.mjs",
    )
    assert exported == ["function", True, "host"]


def test_a_stranger_origin_can_neither_frame_nor_drive_the_room(
    server, sites, sign, new_page
) -> None:
    allowed, stranger = sites
    host = new_page()
    open_parent(host, allowed.url, server)
    room = "embed-guarded"
    assert join(host, server, room, "hugo", "host", appSign=sign) == {"ok": True}

    # The stranger's page cannot even start a session.
    other = new_page()
    open_parent(other, stranger.url, server)
    refused = join(other, server, room, "sly", "audience", appSign=sign)
    assert refused["ok"] is False
    assert refused["code"] in ("network_error", "origin_not_allowed"), refused
    expect(other.locator("#room iframe")).to_have_count(0)

    # Nor frame a session made for the integrator: the server forbids it (CSP), the browser
    # shows no room.
    session = create_session(server, allowed.url, token=mint(sign, room, "sly"), room_id=room)
    with urllib.request.urlopen(session["url"]) as response:
        policy = response.headers["Content-Security-Policy"].split("; ")
    ancestors = next(d for d in policy if d.startswith("frame-ancestors ")).split()
    assert stranger.url not in ancestors and allowed.url in ancestors
    other.evaluate(
        "(url) => { const f = document.createElement('iframe'); f.src = url; f.id = 'theft';"
        " document.body.append(f); }",
        session["url"],
    )
    other.locator("#theft").wait_for(state="attached")
    framed = next(f for f in other.frames if f != other.main_frame)
    framed.wait_for_load_state()
    assert framed.url.startswith("chrome-error://"), framed.url  # blocked, not the room

    # A stranger's frame inside the integrator's page posts to the room: ignored, and the
    # room's answers never reach it; its fake pushes do not reach the integrator's events.
    host.evaluate(
        "(url) => { const f = document.createElement('iframe'); f.src = url + '/?evil';"
        " f.id = 'evil'; document.body.append(f); }",
        stranger.url,
    )
    evil = host.frame_locator("#evil").locator("body")
    expect(evil).to_be_attached()
    evil_frame = next(f for f in host.frames if "evil" in f.url)
    evil_frame.evaluate(
        """() => {
          window.answers = [];
          addEventListener('message', (e) => window.answers.push(e.data));
          const room = parent.frames[0];
          room.postMessage({liveaudio: 1, id: 'x1', method: 'seat.host.close',
                            args: [{targetIndex: 5}]}, '*');
          parent.postMessage({liveaudio: 1, push: 'ended', joined: true, reason: 'kickOut'}, '*');
        }"""
    )
    # The integrator's own call goes after the stranger's message; once its change is seen,
    # the stranger's would have been too.
    assert ok(host, "c().seat.host.close({targetIndex: 6})") is True
    until(host, "c().roomState.rows.flat().find((s) => s.index === 6).locked")
    assert read(host, "c().roomState.rows.flat().find((s) => s.index === 5).locked") is False
    assert read(host, "seen.filter((e) => e.name === 'onEnded').length") == 0
    assert evil_frame.evaluate("() => window.answers") == []

    # The operator's moves, through the HTTP API, end the room for the users: with a reason.
    kai = new_page()
    open_parent(kai, allowed.url, server)
    assert join(kai, server, room, "kai", "audience", token=mint(sign, room, "kai")) == {"ok": True}
    api(server, sign, f"/rooms/{room}/members/kai/kick")
    assert seen(kai, "onEnded")[-1][0] == "kickOut"
    api(server, sign, f"/rooms/{room}/end")
    assert seen(host, "onEnded")[-1][0] == "roomEnded"
    assert seen(host, "room.onStateChanged")[-1] == ["disconnected"]


def api(server: LiveServer, sign: str, path: str) -> dict:
    """The integrator's backend calling the server's HTTP API."""
    credentials = base64.b64encode(f"1234567:{sign}".encode()).decode()
    request = urllib.request.Request(
        server.url + "/api/v1" + path,
        data=b"{}",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {credentials}"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def create_session(server: LiveServer, origin: str, *, token: str, room_id: str) -> dict:
    """What embed.js asks first, as the integrator's page would (its Origin header)."""
    body = {"appID": 1234567, "roomID": room_id, "userID": "sly", "userName": "Sly", "token": token}
    request = urllib.request.Request(
        server.url + "/embed/sessions/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": origin},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())
