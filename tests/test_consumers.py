"""The room socket, end to end through the real consumer and the in-memory channel layer."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from liveaudio.asgi import application
from rooms import services
from rooms.events import room_group, room_update_parts
from rooms.models import App, Member, Message, Room, Seat
from rooms.selectors import room_state
from rooms.services.common import room_changed
from tests.socket_client import (
    ORIGIN,
    SOCKET_TESTS,
    Participant,
    event_of,
    socket_path,
    update_with,
)

pytestmark = SOCKET_TESTS

db = database_sync_to_async


@db
def make_room(room_id: str = "jam") -> Room:
    app, _ = App.objects.get_or_create(app_id=555, defaults={"name": "Socket tests"})
    return services.room_create(app=app, room_id=room_id, title="Jam")


def changed(room: Room, event: dict) -> None:
    """A room change as services make one: counted, and sent once committed."""
    with transaction.atomic():
        room_changed(room, [event])


@db
def seat_occupant(room: Room, index: int) -> str | None:
    seat = Seat.objects.select_related("occupant").get(room=room, index=index)
    return seat.occupant.user_id if seat.occupant else None


@db
def member(room: Room, user_id: str) -> Member:
    return Member.objects.select_related("room").get(room=room, user_id=user_id)


def seat(state: dict, index: int) -> dict:
    return next(s for row in state["rows"] for s in row if s["index"] == index)


# --- refusing before anything is stored -----------------------------------------------------


async def refused(room: Room, token: str | None) -> tuple[dict, int]:
    participant = await Participant.join(room, "x", token=token or "", expect_welcome=False)
    error = await participant.wait_for("error")
    code = await participant.wait_closed()
    return error, code


@pytest.mark.parametrize(
    ("kind", "code", "close"),
    [
        ("missing", "token_missing", 4001),
        ("forged", "token_invalid", 4002),
        ("expired", "token_expired", 4003),
        ("other_room", "token_wrong_room", 4004),
        ("other_app", "token_wrong_app", 4004),
    ],
)
async def test_a_bad_token_is_refused_before_anything_is_stored(kind, code, close) -> None:
    room = await make_room()
    now = int(time.time())
    claims = {
        "app_id": 555,
        "room_id": "jam",
        "user_id": "x",
        "user_name": "X",
        "iat": now,
        "exp": now + 60,
    }

    @db
    def tokens() -> dict:
        sign = App.objects.get(app_id=555).app_sign
        return {
            "missing": None,
            "forged": jwt.encode(claims, "f" * 64, algorithm="HS256"),
            "expired": jwt.encode({**claims, "exp": now - 1}, sign, algorithm="HS256"),
            "other_room": jwt.encode({**claims, "room_id": "elsewhere"}, sign, algorithm="HS256"),
            "other_app": jwt.encode({**claims, "app_id": 1}, sign, algorithm="HS256"),
        }

    error, closed = await refused(room, (await tokens())[kind])
    assert (error["code"], closed) == (code, close)
    assert error["message"]
    assert not await db(Member.objects.filter(room=room).exists)()


async def test_an_unknown_room_is_refused() -> None:
    room = await make_room()
    communicator = WebsocketCommunicator(
        application, "/ws/rooms/555/nope/?token=x", headers=[ORIGIN]
    )
    await communicator.connect()
    participant = Participant(communicator)
    assert (await participant.wait_for("error"))["code"] == "room_not_found"
    assert await participant.wait_closed() == 4006
    assert room.pk  # the real room is untouched


async def test_a_foreign_origin_cannot_open_the_socket() -> None:
    room = await make_room()
    communicator = WebsocketCommunicator(
        application, socket_path(room, "x"), headers=[(b"origin", b"https://evil.test")]
    )
    connected, _ = await communicator.connect()
    assert not connected


# --- the live room --------------------------------------------------------------------------


async def test_a_newcomer_sees_the_current_state_and_history() -> None:
    room = await make_room()
    host = await Participant.join(room, "host", role="host")
    await host.request("seat.take", index=0)
    for i in range(55):
        await host.request("message.send", message=f"m{i}")
    newcomer = await Participant.join(room, "new")
    welcome = newcomer.json[-1]
    assert seat(welcome["state"], 0)["user_id"] == "host"
    assert [m["message"] for m in welcome["messages"]] == [f"m{i}" for i in range(5, 55)]
    assert {m["user_id"] for m in welcome["state"]["members"]} == {"host", "new"}
    assert any('id="seats"' in h and "Host" in h for h in newcomer.html)
    await host.leave()
    await newcomer.leave()


async def test_a_seat_taken_is_seen_by_everyone() -> None:
    room = await make_room()
    a, b = await Participant.join(room, "a"), await Participant.join(room, "b")
    reply = await a.request("seat.take", index=1)
    assert reply == {
        "type": "reply",
        "requestID": reply["requestID"],
        "ok": True,
        "data": {"index": 1},
    }
    update = await b.wait_for(update_with("seat.onChanged"))
    assert event_of(update, "seat.onChanged")["taken"] == {"1": "a"}
    assert seat(update["state"], 1)["user_id"] == "a"
    assert 'data-user-id="a"' in await b.wait_for_html('id="seat-1"')
    await a.leave()
    await b.leave()


async def test_an_update_delivered_late_brings_its_events_with_the_room_as_it_is_now() -> None:
    """With two server processes writing to a room, an update read before another one was
    written can arrive after it: the socket must not take its page back to the older room."""
    room = await make_room()
    a, b = await Participant.join(room, "a"), await Participant.join(room, "b")
    before_a_sat = await db(room_update_parts)(room)
    await a.request("seat.take", index=1)
    newest = await b.wait_for(
        lambda f: f.get("type") == "room.update" and seat(f["state"], 1)["user_id"] == "a"
    )
    late_event = {"type": "onUserJoined", "userID": "late"}
    await get_channel_layer().group_send(
        room_group(room.pk), {"type": "room.update", **before_a_sat, "events": [late_event]}
    )
    late = await b.wait_for(lambda f: f.get("type") == "room.update" and late_event in f["events"])
    assert late["state"] == newest["state"]  # the state the page has, not the older one
    assert seat(late["state"], 1)["user_id"] == "a"
    assert 'data-user-id="a"' in b.html[-1]  # nor an older seat grid
    await a.leave()
    await b.leave()


async def test_a_burst_of_updates_reaches_a_socket_merged_with_every_event() -> None:
    """A join storm sends every socket one update per joiner, each with the whole room: a
    socket sends them on merged, at most ~10 frames a second, no event lost, newest state."""
    room = await make_room()
    a, b = await Participant.join(room, "a"), await Participant.join(room, "b")
    await b.wait_for(lambda f: f.get("type") == "room.update")  # a's join, and b's own
    frames_before = len(b.json)
    for n in range(10):
        await db(changed)(room, {"type": "burst", "n": n})
    last = await b.wait_for(
        lambda f: f.get("type") == "room.update" and {"type": "burst", "n": 9} in f["events"]
    )
    updates = [f for f in b.json[frames_before:] if f.get("type") == "room.update"]
    burst = [e["n"] for f in updates for e in f["events"] if e["type"] == "burst"]
    assert burst == list(range(10))  # all of them, in order
    assert len(updates) < 5
    assert last["state"]["revision"] == (await db(room_state)(room)).revision
    await a.leave()
    await b.leave()


async def test_join_and_leave_update_everyones_member_list() -> None:
    room = await make_room()
    a = await Participant.join(room, "a")
    b = await Participant.join(room, "b", user_name="Bea")
    joined = await a.wait_for(update_with("onUserJoined", userID="b"))
    assert "b" in {m["user_id"] for m in joined["state"]["members"]}
    await b.leave()
    left = await a.wait_for(update_with("onUserLeft", userID="b"))
    assert "b" not in {m["user_id"] for m in left["state"]["members"]}
    await a.leave()


async def test_chat_reaches_everyone_escaped() -> None:
    room = await make_room()
    a = await Participant.join(room, "a")
    b = await Participant.join(room, "b", user_name="<img src=x onerror=alert(1)>")
    await b.send("message.send", message="<script>alert('hi')</script>")
    received = await a.wait_for("message.onReceived")
    assert received["message"]["message"] == "<script>alert('hi')</script>"
    html = await a.wait_for_html("message-")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img" in html
    await a.leave()
    await b.leave()


async def test_the_page_form_values_work_as_strings() -> None:
    """htmx's ws-send sends form values as strings plus a HEADERS object."""
    room = await make_room()
    a = await Participant.join(room, "a")
    await a.communicator.send_json_to(
        {"action": "seat.take", "index": "3", "HEADERS": {"HX-Request": "true"}}
    )
    await a.wait_for("reply")
    assert await seat_occupant(room, 3) == "a"
    await a.communicator.send_json_to({"action": "microphone.turnOn", "isOn": "true"})
    await a.wait_for("reply")
    assert (await member(room, "a")).mic_on
    await a.leave()


async def test_a_locked_room_refuses_an_audience_take_with_a_visible_error() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    assert (await host.request("seat.host.close", targetIndex=-1))["ok"]
    closed = await guest.wait_for(update_with("seat.onClosed"))
    assert all(s["locked"] for row in closed["state"]["rows"] for s in row)
    error = await guest.request("seat.take", index=2)
    assert (error["type"], error["code"]) == ("error", "seat_locked")
    assert "locked" in await guest.wait_for_html('id="toast"')
    assert await seat_occupant(room, 2) is None
    await host.leave()
    await guest.leave()


async def test_an_audience_member_cannot_lock() -> None:
    room = await make_room()
    guest = await Participant.join(room, "g")
    error = await guest.request("seat.host.close", targetIndex=-1)
    assert error["code"] == "not_permitted"
    assert not await db(Seat.objects.filter(room=room, locked=True).exists)()
    await guest.leave()


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"seat.take"',
        '{"action": "seat.explode"}',
        '{"no": "action"}',
        '{"action": "seat.take"}',
        '{"action": "seat.take", "index": "two"}',
        '{"action": "seat.take", "index": true}',
        '{"action": "seat.take", "index": 99}',
        '{"action": "seat.take", "index": -5}',
        '{"action": "message.send", "message": ""}',
        '{"action": "message.send", "message": 42}',
        json.dumps({"action": "message.send", "message": "x" * 1001}),
        '{"action": "message.send", "message": "hi", "attributes": "x"}',
        '{"action": "microphone.turnOn", "isOn": "maybe"}',
        '{"action": "ping", "requestID": 5}',
        json.dumps({"action": "ping", "pad": "x" * 20_000}),
    ],
)
async def test_bad_messages_get_an_error_and_the_socket_keeps_working(raw: str) -> None:
    room = await make_room()
    a = await Participant.join(room, "a")
    await a.communicator.send_to(text_data=raw)
    error = await a.wait_for("error")
    assert error["code"] in {
        "bad_request",
        "seat_out_of_range",
        "message_empty",
        "message_too_long",
    }
    assert error["message"]
    assert (await a.request("ping"))["ok"]
    assert not await db(Message.objects.exists)()
    await a.leave()


async def test_a_flood_is_refused_without_closing_the_socket(settings) -> None:
    settings.LIVEAUDIO_SOCKET_MESSAGES_PER_10S = 5
    room = await make_room()
    a = await Participant.join(room, "a")
    for _ in range(5):
        assert (await a.request("ping"))["ok"]
    error = await a.request("ping")
    assert error["type"] == "error" and "slow down" in error["message"]
    await a.leave()


async def test_a_second_tab_takes_over_and_the_first_is_told() -> None:
    room = await make_room()
    first = await Participant.join(room, "u")
    await first.request("seat.take", index=2)
    second = await Participant.join(room, "u")
    error = await first.wait_for("error")
    assert error["code"] == "session_replaced"
    assert await first.wait_closed() == 4009
    assert (await second.request("ping"))["ok"]
    assert (await member(room, "u")).online
    assert await seat_occupant(room, 2) == "u"
    await second.leave()


async def test_a_reload_within_the_grace_period_keeps_the_seat(settings) -> None:
    settings.LIVEAUDIO_SEAT_GRACE_SECONDS = 5
    room = await make_room()
    a = await Participant.join(room, "a")
    await a.request("seat.take", index=1)
    await a.leave()
    again = await Participant.join(room, "a")
    assert seat(again.json[-1]["state"], 1)["user_id"] == "a"
    await again.leave()


async def test_a_disconnected_users_seat_frees_after_the_grace_period() -> None:
    room = await make_room()
    watcher = await Participant.join(room, "w")
    a = await Participant.join(room, "a")
    await a.request("seat.take", index=1)
    await a.leave()  # the grace period is 0.3 s in tests
    update = await watcher.wait_for(update_with("seat.onChanged", untaken={"1": "a"}))
    assert seat(update["state"], 1)["user_id"] is None
    await watcher.leave()


# --- moderation reaches the sockets ---------------------------------------------------------


async def test_a_kicked_user_is_told_and_disconnected() -> None:
    room = await make_room()
    a, b = await Participant.join(room, "a"), await Participant.join(room, "b")
    await b.request("seat.take", index=2)
    await db(services.member_kick)(member=await member(room, "b"))
    assert (await b.wait_for("onEnded"))["reason"] == "kickOut"
    assert await b.wait_closed() == 4010
    update = await a.wait_for(update_with("onUserLeft", userID="b"))
    assert seat(update["state"], 2)["user_id"] is None
    await a.leave()


async def test_a_banned_user_cannot_come_back_with_a_fresh_token() -> None:
    room = await make_room()
    b = await Participant.join(room, "b")
    await db(services.member_ban)(member=await member(room, "b"))
    await b.wait_closed()
    again = await Participant.join(room, "b", expect_welcome=False)
    assert (await again.wait_for("error"))["code"] == "banned"
    assert await again.wait_closed() == 4005


async def test_ending_the_room_tells_and_disconnects_everyone() -> None:
    room = await make_room()
    people = [await Participant.join(room, name) for name in ("a", "b", "c")]
    await db(services.room_end)(room=room)
    for person in people:
        assert (await person.wait_for("onEnded"))["reason"] == "roomEnded"
        assert await person.wait_closed() == 4011


async def test_a_deleted_message_disappears_from_everyones_view() -> None:
    room = await make_room()
    a, b = await Participant.join(room, "a"), await Participant.join(room, "b")
    reply = await b.request("message.send", message="regrettable")
    message_id = reply["data"]["messageID"]
    await a.wait_for("message.onReceived")
    message = await db(Message.objects.get)(pk=message_id)
    await db(services.message_delete)(message=message)
    assert (await a.wait_for("message.onDeleted"))["messageID"] == message_id
    html = await a.wait_for_html('hx-swap-oob="delete"')
    assert f'id="message-{message_id}"' in html
    latecomer = await Participant.join(room, "late")
    assert latecomer.json[-1]["messages"] == []
    for p in (a, b, latecomer):
        await p.leave()


async def test_concurrent_takes_of_one_seat_seat_exactly_one() -> None:
    room = await make_room()
    people = [await Participant.join(room, f"p{i}") for i in range(12)]
    replies = await asyncio.gather(*(p.request("seat.take", index=5) for p in people))
    winners = [r for r in replies if r["type"] == "reply"]
    assert len(winners) == 1
    assert {r["code"] for r in replies if r["type"] == "error"} == {"seat_taken"}
    assert await db(Seat.objects.filter(room=room, occupant__isnull=False).count)() == 1
    for p in people:
        await p.leave()


async def test_a_disconnect_mid_change_leaves_the_room_consistent() -> None:
    room = await make_room()
    watcher = await Participant.join(room, "w")
    quitter = await Participant.join(room, "q")
    await quitter.send("seat.take", index=4)
    await quitter.send("message.send", message="bye")
    await quitter.leave()  # gone before the answers
    left = await watcher.wait_for(
        lambda f: (
            f.get("type") == "room.update" and {"type": "onUserLeft", "userID": "q"} in f["events"]
        )
    )
    assert "q" not in {m["user_id"] for m in left["state"]["members"] if m["online"]}
    # Whatever got applied was applied whole, and the room still works for everyone else.
    assert await seat_occupant(room, 4) in {None, "q"}
    assert await db(Message.objects.filter(text="bye").count)() in {0, 1}
    assert (await watcher.request("seat.take", index=4))["type"] in {"reply", "error"}
    assert (await watcher.request("message.send", message="still here"))["ok"]
    await watcher.leave()
