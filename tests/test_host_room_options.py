"""A host's config sets the room's rolesCanControl (mediaPlayer) and rolesCanWrite
(roomProperties) only where it names them: a host who comes back through the token page, or
with an embed config that leaves them out, keeps what an earlier host's config set."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from liveaudio.asgi import application
from rooms import services
from rooms.config import join_options, validate_config, without_unnamed_room_options
from rooms.models import App, Room
from tests.socket_client import ORIGIN, Participant
from tests.test_api import socket_test
from tests.test_media_player import host_session

db = database_sync_to_async
SET_UP = {
    "mediaPlayer": {"rolesCanControl": ["host", "audience"]},
    "roomProperties": {"rolesCanWrite": ["host"]},
}


@db
def make_room() -> Room:
    app, _ = App.objects.get_or_create(app_id=561, defaults={"name": "Host option tests"})
    return services.room_create(app=app, room_id="opts")


@db
def stored_roles(room: Room) -> tuple[list[str], list[str]]:
    return Room.objects.values_list("media_roles", "property_roles").get(pk=room.pk)


async def join_session(room: Room, config: dict) -> Participant:
    key = await host_session(room, config)
    path = f"/ws/rooms/{room.app.app_id}/{room.room_id}/?session={key}"
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    assert (await communicator.connect())[0]
    host = Participant(communicator)
    await host.wait_for("room.joined")
    return host


@socket_test
async def test_a_host_back_through_the_token_page_keeps_the_roles_their_config_set() -> None:
    room = await make_room()
    host = await join_session(room, SET_UP)
    assert await stored_roles(room) == (["host", "audience"], ["host"])
    await host.leave()
    again = await Participant.join(room, "h", role="host")  # /embed/...?token=...&role=host
    assert await stored_roles(room) == (["host", "audience"], ["host"])
    assert again.json[0]["state"]["media"]["rolesCanControl"] == ["host", "audience"]
    await again.leave()


@socket_test
async def test_an_embed_config_changes_only_the_roles_it_names() -> None:
    room = await make_room()
    await (await join_session(room, SET_UP)).leave()
    await (await join_session(room, {"seat": {"closeWhenJoining": False}})).leave()
    assert await stored_roles(room) == (["host", "audience"], ["host"])
    # Naming one, even as its default, changes that one only.
    await (await join_session(room, {"mediaPlayer": {"rolesCanControl": ["host"]}})).leave()
    assert await stored_roles(room) == (["host"], ["host"])


def test_the_session_config_says_null_for_the_room_options_it_does_not_name() -> None:
    given = {"role": "host", "roomProperties": {"rolesCanWrite": ["speaker"]}}
    config = without_unnamed_room_options(validate_config(given), given)
    assert config["mediaPlayer"]["rolesCanControl"] is None
    assert config["roomProperties"]["rolesCanWrite"] == ["speaker"]
    options = join_options(config)
    assert options["media_roles"] is None and options["property_roles"] == ("speaker",)
    assert services.JoinOptions().media_roles is None  # the token page names none
