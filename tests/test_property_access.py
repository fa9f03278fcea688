"""The state says whether this user may write room properties (``roomProperties.canWrite``,
the server's answer to the host's ``rolesCanWrite``), as ``media.canControl`` does for the
player: an SDK user knows before trying."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from rooms import services
from rooms.models import App, Room
from rooms.selectors import RoomState, room_state
from tests.socket_client import Participant
from tests.test_api import socket_test
from tests.test_host_room_options import join_session

db = database_sync_to_async
EVERY_ROLE = ["host", "cohost", "speaker", "audience"]


@db
def make_room() -> Room:
    app, _ = App.objects.get_or_create(app_id=562, defaults={"name": "Access tests"})
    return services.room_create(app=app, room_id="access")


def access(participant: Participant) -> dict:
    return next(f["state"] for f in reversed(participant.json) if "state" in f)["roomProperties"]


@socket_test
async def test_by_default_everyone_may_write() -> None:
    room = await make_room()
    guest = await Participant.join(room, "g")
    assert access(guest) == {"rolesCanWrite": EVERY_ROLE, "canWrite": True}
    await guest.leave()


@socket_test
async def test_each_socket_is_told_what_the_hosts_roles_mean_for_it() -> None:
    room = await make_room()
    host = await join_session(room, {"roomProperties": {"rolesCanWrite": ["host", "speaker"]}})
    guest = await Participant.join(room, "g")
    other = await Participant.join(room, "o")
    assert access(host) == {"rolesCanWrite": ["host", "speaker"], "canWrite": True}
    assert access(guest) == {"rolesCanWrite": ["host", "speaker"], "canWrite": False}
    # Seated, the guest is a speaker: the next state says so to them, and only to them.
    assert (await guest.request("seat.audience.take", index=3))["type"] == "reply"
    await guest.wait_for(lambda f: f.get("type") == "room.update" and access(guest)["canWrite"])
    await other.wait_for(lambda f: f.get("type") == "room.update")
    assert access(other)["canWrite"] is False
    written = await guest.request("room.updateProperty", roomID="access", key="k", value="v")
    assert written["type"] == "reply"
    for person in (host, guest, other):
        await person.leave()


@pytest.mark.django_db
def test_the_state_keeps_the_roles_through_its_json(room: Room) -> None:
    Room.objects.filter(pk=room.pk).update(property_roles=["host"])
    state = room_state(room)
    data = state.as_json()
    assert data["roomProperties"] == {"rolesCanWrite": ["host"], "canWrite": False}
    assert "roles_can_write" not in data
    assert RoomState.from_json(data).roles_can_write == ("host",)
