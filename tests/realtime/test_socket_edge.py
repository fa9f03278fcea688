"""The room socket's edge, through the real consumer and the in-memory channel layer:
private notices, the origin rules, timers after a room ends, floods, and the repair of a
lost update."""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import timedelta

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from liveaudio.asgi import application
from rooms import events, services
from rooms.config import validate_config
from rooms.models import App, EmbedSession, Member, Room
from rooms.realtime.timers import RoomTimers
from rooms.selectors import room_state
from rooms.services.common import room_changed
from rooms.tokens import token_mint
from tests.socket_client import SOCKET_TESTS, Participant, event_of, socket_path, update_with

pytestmark = SOCKET_TESTS
db = database_sync_to_async


@db
def make_room(room_id: str = "jam", origins: str = "https://site.test") -> Room:
    app, _ = App.objects.get_or_create(
        app_id=556, defaults={"name": "Edge tests", "allowed_origins": origins}
    )
    return services.room_create(app=app, room_id=room_id, title="Jam")


@db
def token_for(room: Room, user_id: str) -> str:
    room = Room.objects.select_related("app").get(pk=room.pk)
    return token_mint(app=room.app, room_id=room.room_id, user_id=user_id, user_name="U")


async def open_socket(path: str, *headers: tuple[bytes, bytes]) -> Participant:
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect()
    assert connected
    return Participant(communicator)


@db
def member_count(room: Room) -> int:
    return Member.objects.filter(room=room).count()


async def wait_until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


# --- notices to users, not rooms ----------------------------------------------------------------


async def test_a_private_notice_reaches_only_its_user_and_reads_no_state() -> None:
    room = await make_room()
    a, b = await Participant.join(room, "a"), await Participant.join(room, "b")
    await a.wait_for(update_with("onUserJoined", userID="b"))
    revision = (await db(room_state)(room)).revision

    def notify() -> int:
        with CaptureQueriesContext(connection) as queries:
            events.notify_users(room, ["a"], {"type": "private.hello", "n": 1})
        return len(queries)

    assert await db(notify)() == 0
    got = await a.wait_for(update_with("private.hello", n=1))
    assert got["state"]["revision"] == revision  # the state a's page already had
    assert (await db(room_state)(room)).revision == revision  # nothing counted
    # b is told of the next room change, and of nothing before it.
    await db(lambda: room_changed(Room.objects.get(pk=room.pk), [{"type": "after"}]))()
    frame = await b.wait_for(update_with("after"))
    assert event_of(frame, "private.hello") is None
    assert not any(event_of(f, "private.hello") for f in b.json)
    await a.leave()
    await b.leave()


async def test_a_request_without_a_host_is_a_notice_with_no_room_update() -> None:
    room = await make_room()
    guest, other = await Participant.join(room, "g"), await Participant.join(room, "o")
    await guest.wait_for(update_with("onUserJoined", userID="o"))
    revision = (await db(room_state)(room)).revision
    assert (await guest.request("seat.audience.applyToTake"))["code"] == "no_host"
    failed = await guest.wait_for(update_with("seat.audience.onTakingRequestFailed"))
    assert failed["state"]["revision"] == revision
    assert (await db(room_state)(room)).revision == revision
    assert (await other.request("ping"))["ok"]
    assert not any(
        f.get("type") == "room.update" and f["state"]["revision"] > revision for f in other.json
    )
    await guest.leave()
    await other.leave()


# --- the origin rules -----------------------------------------------------------------------


async def test_a_page_on_another_port_of_the_host_is_refused() -> None:
    room = await make_room()
    path = socket_path(room, await token_for(room, "u"))
    refused = await open_socket(
        path, (b"host", b"localhost:8000"), (b"origin", b"http://localhost:9999")
    )
    assert (await refused.wait_for("error"))["code"] == "origin_not_allowed"
    assert await refused.wait_closed() == 4014
    assert await member_count(room) == 0
    own = await open_socket(
        path, (b"host", b"localhost:8000"), (b"origin", b"http://localhost:8000")
    )
    await own.wait_for("room.joined")
    await own.leave()


async def test_a_token_socket_may_come_from_the_apps_allowed_origin_only() -> None:
    room = await make_room()
    await db(App.objects.create)(app_id=557, name="Other", allowed_origins="https://other.test")
    path = socket_path(room, await token_for(room, "u"))
    other = await open_socket(path, (b"origin", b"https://other.test"))
    assert (await other.wait_for("error"))["code"] == "origin_not_allowed"
    assert await other.wait_closed() == 4014
    assert await member_count(room) == 0
    site = await open_socket(path, (b"origin", b"https://site.test"))
    await site.wait_for("room.joined")
    await site.leave()


@db
def make_session(room: Room, parent_origin: str) -> str:
    room = Room.objects.select_related("app").get(pk=room.pk)
    return EmbedSession.objects.create(
        app=room.app,
        key="edge-" + "k" * 40,
        room_id=room.room_id,
        user_id="s",
        user_name="S",
        config=validate_config({}),
        parent_origin=parent_origin,
        expires_at=timezone.now() + timedelta(hours=1),
    ).key


async def test_a_session_socket_comes_from_this_server_or_its_parent_page_only() -> None:
    room = await make_room(origins="https://site.test\nhttps://second.test")
    key = await make_session(room, "https://site.test")
    path = f"/ws/rooms/{room.app.app_id}/{room.room_id}/?session={key}"
    # Another origin of the same app: not the page this session was made for.
    second = await open_socket(path, (b"origin", b"https://second.test"))
    assert (await second.wait_for("error"))["code"] == "origin_not_allowed"
    assert await second.wait_closed() == 4014
    assert await member_count(room) == 0
    for origin in (b"https://site.test", b"http://localhost:8000"):  # its parent, the server
        ok = await open_socket(path, (b"host", b"localhost:8000"), (b"origin", origin))
        await ok.wait_for("room.joined")
        await ok.leave()


# --- timers after the room ended --------------------------------------------------------------


async def test_timers_stop_quietly_when_their_room_ends(settings, caplog) -> None:
    settings.LIVEAUDIO_SEAT_TICKET_SECONDS = 0.2
    caplog.set_level(logging.WARNING)
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    speaker = await Participant.join(room, "s", role="speaker", takeIndexWhenJoining=2)
    assert (await guest.request("seat.audience.applyToTake"))["ok"]  # a ticket timer
    await speaker.leave()  # a stale-seat timer, after the grace period
    await wait_until(lambda: len(RoomTimers.pending()) == 2)
    assert (await host.request("room.end"))["ok"]
    assert await guest.wait_closed() == 4011
    # Had they been left to fire, they would be done in well under a second.
    await wait_until(lambda: not RoomTimers.pending())
    await asyncio.sleep(0.6)  # past both timers' deadlines: nothing may wake up and fail
    gc.collect()  # an unretrieved task exception is logged when its task is collected
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]
    await host.leave()


async def test_a_timer_that_fires_after_the_room_ended_elsewhere_is_quiet(caplog) -> None:
    caplog.set_level(logging.WARNING)
    room = await make_room()
    timers = RoomTimers.of(room.pk)
    timers.after(0.05, services.seat_tickets_expire, room=room)
    await db(services.room_end)(room=room)  # by an operator: no socket of this process told
    await wait_until(lambda: not timers.tasks)
    gc.collect()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- floods -----------------------------------------------------------------------------------


async def test_a_flood_of_bad_frames_gets_one_error_then_a_close(settings) -> None:
    settings.LIVEAUDIO_SOCKET_MESSAGES_PER_10S = 20
    room = await make_room()
    a = await Participant.join(room, "a")
    for n in range(300):
        await a.communicator.send_to(text_data="not json" if n % 2 else '{"action": "nope"}')
    assert await a.wait_closed() == 4008
    errors = [f for f in a.json if f.get("type") == "error"]
    # Each frame within the budget, one past it, then silence, and the reason for the close.
    assert len(errors) == 20 + 1 + 1
    assert errors[-2]["message"] == "Too many messages; slow down."
    assert errors[-1]["code"] == "too_many_messages"
    assert len([h for h in a.html if "toast" in h]) == 22


# --- a lost update is repaired --------------------------------------------------------------


async def test_a_socket_that_missed_an_update_catches_up() -> None:
    room = await make_room()
    a = await Participant.join(room, "a")
    # A change committed whose broadcast never arrived (a full channel, a Redis outage).
    await db(lambda: Room.objects.filter(pk=room.pk).update(revision=F("revision") + 5))()
    revision = (await db(room_state)(room)).revision
    caught_up = await a.wait_for(
        lambda f: f.get("type") == "room.update" and f["state"]["revision"] == revision
    )
    assert caught_up["events"] == []
    await a.leave()


# --- bad bytes --------------------------------------------------------------------------------


async def test_bad_text_and_deep_json_are_refused_clearly_and_store_nothing() -> None:
    room = await make_room()
    a = await Participant.join(room, "a")
    frames = [
        '{"action": "message.send", "message": "\\ud800 lone"}',  # a lone surrogate
        '{"action": "message.send", "message": "nul \\u0000 here"}',
        '{"action": "message.send", "message": "hi", "attributes": {"k": "\\u0007"}}',
        "[" * 5000 + "]" * 5000,
        '{"action": "seat.host.muteByUserID", "userID": "line\\nbreak"}',
    ]
    for frame in frames:
        await a.communicator.send_to(text_data=frame)
        error = await a.wait_for("error")
        assert error["code"] == "bad_request", error
    assert (await a.request("ping"))["ok"]  # still connected, never a 1011
    assert not await db(lambda: room.messages.exists())()
    await a.leave()


# --- memory -----------------------------------------------------------------------------------


async def test_a_room_update_is_one_string_shared_by_every_sockets_queue() -> None:
    """The in-memory layer deep-copies a message for each channel of a group: the room's
    state must be a plain str (shared by the copies); no HTML rides along (each process
    renders what its sockets need from the state)."""
    room = await make_room()
    layer = get_channel_layer()
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add(events.room_group(room.pk), channel)
    await db(lambda: room_changed(Room.objects.get(pk=room.pk), [{"type": "x"}]))()
    one, other = await layer.receive(first), await layer.receive(second)
    assert one["state_json"] is other["state_json"]
    assert "html" not in one


async def test_room_updates_reach_a_socket_without_a_thread_hop_each(monkeypatch) -> None:
    """Channels hops to a worker thread before each handler to close stale database
    connections; a room update touches no database in the socket, and a join in a room of N
    sockets sends N of them: the hop cost daphne 40 % for a minute after 500 joins."""
    import channels.consumer

    hops = 0
    close = channels.consumer.aclose_old_connections

    async def counted() -> None:
        nonlocal hops
        hops += 1
        await close()

    room = await make_room()
    watcher = await Participant.join(room, "w")
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    for n in range(20):
        await db(lambda n=n: room_changed(Room.objects.get(pk=room.pk), [{"type": "x", "n": n}]))()
    await watcher.wait_for(lambda f: any(e.get("n") == 19 for e in f.get("events", [])))
    assert hops == 0, hops
    monkeypatch.undo()
    await watcher.leave()
