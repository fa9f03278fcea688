"""Room properties over the real socket (issue 12, part 1): every socket hears each change,
a (re)joining one finds them in its welcome, bad input is an error frame that leaves the
connection working, and an owner's ``isDeleteAfterOwnerLeft`` keys go when they leave."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async

from rooms import services
from rooms.models import App, Room, RoomProperty
from rooms.realtime.timers import RoomTimers
from rooms.services.presence import seats_release_due
from tests.socket_client import SOCKET_TESTS, Participant, event_of, update_with

pytestmark = SOCKET_TESTS
db = database_sync_to_async
EVENT = "room.onPropertiesUpdated"
ROOM = "props"


@db
def make_room() -> Room:
    app, _ = App.objects.get_or_create(app_id=557, defaults={"name": "Property tests"})
    return services.room_create(app=app, room_id=ROOM)


@db
def stored(room: Room) -> dict[str, str]:
    return dict(RoomProperty.objects.filter(room=room).values_list("key", "value"))


async def property_event(participant: Participant, **fields: object) -> dict:
    frame = await participant.wait_for(update_with(EVENT, **fields))
    event = event_of(frame, EVENT, **fields)
    assert event is not None
    return event


async def grace_timers_done() -> None:
    pending = RoomTimers.pending()
    assert pending, "a disconnect starts its grace timer"
    await asyncio.wait(pending, timeout=5)


def latest_state(participant: Participant) -> dict:
    return next(f["state"] for f in reversed(participant.json) if "state" in f)


async def test_a_change_reaches_every_socket_and_the_welcome_of_a_newcomer() -> None:
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    reply = await ann.request("room.updateProperty", roomID=ROOM, key="song", value="Ode")
    assert reply["type"] == "reply"
    assert reply["data"] == {"roomID": ROOM, "setProperties": {"song": "Ode"}}
    for person in (ann, bob):
        event = await property_event(person, setProperties={"song": "Ode"})
        assert event["roomID"] == ROOM and event["deleteProperties"] == {}
        assert latest_state(person)["properties"] == {"song": "Ode"}
    carl = await Participant.join(room, "carl")
    welcome = next(f for f in carl.json if f["type"] == "room.joined")
    assert welcome["state"]["properties"] == {"song": "Ode"}
    query = await carl.request("room.queryProperties", roomID=ROOM)
    assert query["data"] == {"roomID": ROOM, "properties": {"song": "Ode"}}
    reply = await ann.request("room.deleteProperties", roomID=ROOM, keys=["song"])
    assert reply["data"] == {"roomID": ROOM, "deleteProperties": {"song": "Ode"}}
    await property_event(carl, deleteProperties={"song": "Ode"})
    await asyncio.gather(ann.leave(), bob.leave(), carl.leave())


async def test_bad_input_is_an_error_frame_and_the_socket_goes_on() -> None:
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    await ann.request("room.updateProperty", roomID=ROOM, key="mine", value="a")
    attempts = [
        (ann, "room.updateProperty", {"roomID": "other", "key": "k", "value": "v"}, "wrong_room"),
        (ann, "room.updateProperty", {"roomID": ROOM, "key": "k" * 17, "value": "v"}, None),
        (ann, "room.updateProperty", {"roomID": ROOM, "key": "k", "value": 5}, None),
        (ann, "room.updateProperty", {"roomID": ROOM, "key": "k"}, "bad_request"),
        (ann, "room.updateProperties", {"roomID": ROOM, "roomProperties": {"b": []}}, None),
        (bob, "room.updateProperty", {"roomID": ROOM, "key": "mine", "value": "b"}, None),
        (bob, "room.deleteProperties", {"roomID": ROOM, "keys": ["mine"], "isForce": True}, None),
        (ann, "room.deleteProperties", {"roomID": ROOM, "keys": "mine"}, "bad_properties"),
    ]
    codes = []
    for who, action, args, code in attempts:
        frame = await who.request(action, **args)
        assert frame["type"] == "error", (action, args)
        assert frame["message"]
        if code:
            assert frame["code"] == code
        codes.append(frame["code"])
    assert codes[1:3] == ["property_key_invalid", "property_value_invalid"]
    assert codes[4:7] == ["property_value_invalid", "property_owned", "not_permitted"]
    assert await stored(room) == {"mine": "a"}
    assert (await ann.request("ping"))["type"] == "reply"
    assert (await bob.request("room.queryProperties", roomID=ROOM))["data"]["properties"] == {
        "mine": "a"
    }
    await asyncio.gather(ann.leave(), bob.leave())


async def test_the_host_forces_a_change_and_everyone_hears_it() -> None:
    room = await make_room()
    ann, host = await Participant.join(room, "ann"), await Participant.join(room, "h", role="host")
    await ann.request("room.updateProperties", roomID=ROOM, roomProperties={"a": "1", "b": "2"})
    reply = await host.request(
        "room.updateProperty", roomID=ROOM, key="a", value="forced", isForce=True
    )
    assert reply["type"] == "reply"
    await property_event(ann, setProperties={"a": "forced"})
    reply = await host.request("room.deleteProperties", roomID=ROOM, keys=["b"], isForce=True)
    assert reply["data"]["deleteProperties"] == {"b": "2"}
    await property_event(ann, deleteProperties={"b": "2"})
    await asyncio.gather(ann.leave(), host.leave())


async def test_two_sockets_racing_for_one_key_both_learn_the_winner() -> None:
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    replies = await asyncio.gather(
        ann.request("room.updateProperty", roomID=ROOM, key="stage", value="ann"),
        bob.request("room.updateProperty", roomID=ROOM, key="stage", value="bob"),
    )
    kinds = sorted(r["type"] for r in replies)
    assert kinds == ["error", "reply"]
    assert next(r for r in replies if r["type"] == "error")["code"] == "property_owned"
    winner = next(r for r in replies if r["type"] == "reply")["data"]["setProperties"]["stage"]
    for person in (ann, bob):
        await property_event(person, setProperties={"stage": winner})
    assert await stored(room) == {"stage": winner}
    await asyncio.gather(ann.leave(), bob.leave())


async def test_an_owner_leaving_takes_their_delete_after_keys_along() -> None:
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    await ann.request(
        "room.updateProperty", roomID=ROOM, key="gift", value="rose", isDeleteAfterOwnerLeft=True
    )
    await ann.request("room.updateProperty", roomID=ROOM, key="song", value="Ode")
    await ann.request("room.leave")
    event = await property_event(bob, deleteProperties={"gift": "rose"})
    assert event["setProperties"] == {}
    assert latest_state(bob)["properties"] == {"song": "Ode"}
    assert await stored(room) == {"song": "Ode"}
    await bob.leave()


async def test_a_kicked_owner_loses_their_delete_after_keys_at_once() -> None:
    room = await make_room()
    host = await Participant.join(room, "h", role="host")
    ann = await Participant.join(room, "ann")
    await ann.request(
        "room.updateProperty", roomID=ROOM, key="gift", value="rose", isDeleteAfterOwnerLeft=True
    )
    assert (await host.request("member.ban", userID="ann"))["type"] == "reply"
    await property_event(host, deleteProperties={"gift": "rose"})
    assert await stored(room) == {}
    await asyncio.gather(host.leave(), ann.leave())


async def test_a_vanished_owner_keeps_their_keys_for_the_grace_period_only() -> None:
    """A socket that closes without a leave: the key goes once the grace period is over
    (the next test: not before), and everyone is told."""
    room = await make_room()
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    await ann.request(
        "room.updateProperty", roomID=ROOM, key="gift", value="rose", isDeleteAfterOwnerLeft=True
    )
    await ann.leave()  # the socket just closes
    await bob.wait_for(update_with("onUserLeft", userID="ann"))
    await property_event(bob, deleteProperties={"gift": "rose"})  # the grace timer: 0.3 s
    assert await stored(room) == {}
    await bob.leave()


async def test_an_owner_back_within_the_grace_period_keeps_their_keys() -> None:
    room = await make_room()
    ann = await Participant.join(room, "ann")
    await ann.request(
        "room.updateProperty", roomID=ROOM, key="gift", value="rose", isDeleteAfterOwnerLeft=True
    )
    await ann.leave()
    again = await Participant.join(room, "ann")
    welcome = next(f for f in again.json if f["type"] == "room.joined")
    assert welcome["state"]["properties"] == {"gift": "rose"}
    await grace_timers_done()  # the first socket's: it found ann back
    assert await stored(room) == {"gift": "rose"}
    # A later change's event comes after any deletion's (one room, one order of updates).
    await again.request("room.updateProperty", roomID=ROOM, key="song", value="Ode")
    await property_event(again, setProperties={"song": "Ode"})
    told = [event_of(f, EVENT) for f in again.json if f["type"] == "room.update"]
    assert all(event["deleteProperties"] == {} for event in told if event)
    await again.leave()


async def test_the_sweep_deletes_the_keys_of_an_owner_whose_timer_died() -> None:
    """The process that held the socket is gone, and its grace timer with it: the sweep of
    any process (rooms.presence) deletes the keys once the grace period is over."""
    room = await make_room()
    bob = await Participant.join(room, "bob")

    @db
    def owner_vanished_long_ago() -> None:
        from datetime import timedelta

        from django.utils import timezone

        from tests.conftest import add_member

        ghost = add_member(room, "ghost", online=False)
        ghost.left_at = timezone.now() - timedelta(seconds=60)
        ghost.save()
        RoomProperty.objects.create(
            room=room, key="gift", value="rose", owner_user_id="ghost", delete_after_owner_left=True
        )

    await owner_vanished_long_ago()
    assert room.pk in await db(seats_release_due)()
    await property_event(bob, deleteProperties={"gift": "rose"})
    assert await stored(room) == {}
    await bob.leave()


async def test_the_hosts_roles_can_write_hold_on_the_socket() -> None:
    """The host's embed config (roomProperties.rolesCanWrite) is stored as they join; a
    role it leaves out gets not_permitted, and the socket goes on working."""
    from channels.testing import WebsocketCommunicator

    from liveaudio.asgi import application
    from tests.socket_client import ORIGIN
    from tests.test_media_player import host_session

    room = await make_room()
    key = await host_session(room, {"roomProperties": {"rolesCanWrite": ["host"]}})
    path = f"/ws/rooms/{room.app.app_id}/{room.room_id}/?session={key}"
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    assert (await communicator.connect())[0]
    host = Participant(communicator)
    await host.wait_for("room.joined")  # the host is in: their roles are stored
    guest = await Participant.join(room, "guest")
    refused = await guest.request("room.updateProperty", roomID=ROOM, key="k", value="v")
    assert (refused["type"], refused["code"]) == ("error", "not_permitted")
    assert await stored(room) == {}
    assert (await guest.request("ping"))["type"] == "reply"
    reply = await host.request("room.updateProperty", roomID=ROOM, key="k", value="v")
    assert reply["type"] == "reply"
    await property_event(guest, setProperties={"k": "v"})
    for person in (host, guest):
        await person.leave()
