"""Room commands from the HTTP API (issue 12: "From the HTTP API too"): the integrator's
backend sends bytes to every socket of the room, in the one order of the room's commands,
as the API itself or speaking for a named user; bad input is a 4xx that sends nothing."""

from __future__ import annotations

import asyncio
import base64

import pytest
from django.conf import settings
from django.core.cache import cache

from rooms import services
from rooms.models import App, Room
from rooms.services import sender_rate
from tests.socket_client import Participant
from tests.test_api import assert_error, call, socket_test
from tests.test_api_idempotency import KeyedApi

pytestmark = pytest.mark.django_db
LIMIT = settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()
    sender_rate.forget_all()


@pytest.fixture
def api(app: App) -> KeyedApi:
    return KeyedApi(app)


def path(room: Room) -> str:
    return f"/rooms/{room.room_id}/commands"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def order(room: Room) -> int:
    return Room.objects.values_list("command_order", flat=True).get(pk=room.pk)


def shown(participant: Participant) -> list[dict]:
    return [m for f in participant.json if f.get("type") == "room.commands" for m in f["messages"]]


async def until_shown(participant: Participant, count: int) -> list[dict]:
    async with asyncio.timeout(10):
        while len(shown(participant)) < count:
            await participant.wait_for("room.commands")
    return shown(participant)


def test_a_command_is_answered_with_its_place_in_the_order(api: KeyedApi, room: Room) -> None:
    first = api.post(path(room), {"command": b64(b"\x00\xffgo")})
    assert first.status_code == 200, first.content
    assert first.json() == {"roomID": room.room_id, "orderKey": 1}
    again = api.post(path(room), {"command": b64(b"x"), "userID": "ann"})
    assert again.json() == {"roomID": room.room_id, "orderKey": 2}
    assert order(room) == 2


@socket_test
async def test_every_socket_gets_it_in_the_order_of_the_members_own(room: Room) -> None:
    api = KeyedApi(room.app)
    ann, bob = await Participant.join(room, "ann"), await Participant.join(room, "bob")
    assert (await ann.request("room.sendCommand", roomID=room.room_id, command=b64(b"a1")))["ok"]
    response = await call(api, "POST", path(room), {"command": b64(b"from the backend")})
    assert response.status_code == 200, response.content
    as_ann = {"command": b64(b"gift"), "userID": "ann"}
    assert (await call(api, "POST", path(room), as_ann)).status_code == 200
    assert (await ann.request("room.sendCommand", roomID=room.room_id, command=b64(b"a2")))["ok"]

    messages = await until_shown(bob, 4)
    assert [m["orderKey"] for m in messages] == [1, 2, 3, 4]
    assert [(base64.b64decode(m["message"]), m["senderUserID"]) for m in messages] == [
        (b"a1", "ann"),
        (b"from the backend", None),
        (b"gift", "ann"),
        (b"a2", "ann"),
    ]
    # Ann never sees her own socket's commands, but does see the API's, even in her name.
    theirs = await until_shown(ann, 2)
    assert [(m["orderKey"], m["senderUserID"]) for m in theirs] == [(2, None), (3, "ann")]
    assert await ann.nothing_more() and len(shown(ann)) == 2
    await asyncio.gather(ann.leave(), bob.leave())


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"command": "not base64!"}, 400, "invalid_request"),
        ({"command": "abc"}, 400, "invalid_request"),  # unpadded
        # One byte over: the schema's base64 length admits it, the service counts bytes.
        ({"command": b64(b"x" * (LIMIT + 1))}, 413, "command_too_large"),
        ({"command": b64(b"x" * (LIMIT * 2))}, 400, "invalid_request"),
        ({"command": 123}, 400, "invalid_request"),
        ({"command": [1, 2]}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"command": b64(b"x"), "userID": ""}, 400, "invalid_request"),
        ({"command": b64(b"x"), "userID": "two\nlines"}, 400, "invalid_request"),
        ({"command": b64(b"x"), "sender": "ann"}, 400, "invalid_request"),
    ],
)
def test_bad_input_is_refused_and_sends_nothing(
    api: KeyedApi, room: Room, body: dict, status: int, code: str
) -> None:
    assert_error(api.post(path(room), body), status, code)
    assert order(room) == 0


def test_the_largest_command_goes(api: KeyedApi, room: Room) -> None:
    largest = b64(b"y" * settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES)
    assert api.post(path(room), {"command": largest}).status_code == 200


def test_an_unknown_or_ended_room(api: KeyedApi, room: Room) -> None:
    assert_error(
        api.post(path(Room(room_id="nowhere")), {"command": "eA=="}), 404, "room_not_found"
    )
    services.room_end(room=room)
    assert_error(api.post(path(room), {"command": "eA=="}), 409, "room_ended")
    assert order(room) == 0


def test_the_apis_own_commands_share_one_allowance_a_room(api: KeyedApi, room: Room) -> None:
    per_second = settings.LIVEAUDIO_ROOM_COMMANDS_PER_SECOND
    for _ in range(per_second):
        assert api.post(path(room), {"command": "eA=="}).status_code == 200
    refused = api.post(path(room), {"command": "eA=="})
    body = assert_error(refused, 429, "command_rate_limited")
    assert refused["Retry-After"] == "1" and str(per_second) in body["message"]
    assert order(room) == per_second
    # A named user is another sender, with an allowance of their own.
    assert api.post(path(room), {"command": "eA==", "userID": "ann"}).status_code == 200


def test_a_retried_post_is_sent_once(api: KeyedApi, room: Room) -> None:
    first = api.post(path(room), {"command": "eA=="}, key="cmd-1")
    again = api.post(path(room), {"command": "eA=="}, key="cmd-1")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert order(room) == 1
