"""Room properties through the HTTP API (issue 12): the integrator's backend reads, sets and
deletes them as a forced write (any key, ``rolesCanWrite`` not applied), a retried POST is
done once, bad input is a 4xx that changes nothing, and the webhook hears each change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from rooms import services, webhooks
from rooms.models import App, IdempotentRequest, Room, RoomProperty
from tests.conftest import add_member
from tests.socket_client import Participant, event_of, update_with
from tests.test_api import assert_error, call, socket_test
from tests.test_api_idempotency import KeyedApi
from tests.test_webhooks import Receiver, hooked_app, verify

pytestmark = pytest.mark.django_db
EVENT = "room.onPropertiesUpdated"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture
def api(app: App) -> KeyedApi:
    return KeyedApi(app)


def path(room: Room, rest: str = "") -> str:
    return f"/rooms/{room.room_id}/properties{rest}"


def stored(room: Room) -> dict[str, tuple[str, str]]:
    return {p.key: (p.value, p.owner_user_id) for p in RoomProperty.objects.filter(room=room)}


def revision(room: Room) -> int:
    return Room.objects.values_list("revision", flat=True).get(pk=room.pk)


def test_the_api_sets_keys_it_owns_and_reads_them_back(api: KeyedApi, room: Room) -> None:
    response = api.post(path(room), {"properties": {"song": "Ode", "mood": "calm"}})
    assert response.status_code == 200, response.content
    expected = {
        "properties": {"mood": "calm", "song": "Ode"},
        "owners": {"mood": None, "song": None},
    }
    assert response.json() == expected
    assert api.get(path(room)).json() == expected
    # A member may not change the API's key; the host may, with isForce.
    guest, host = add_member(room, "g"), add_member(room, "h", role="host")
    with pytest.raises(services.ServiceError) as caught:
        services.property_update(member=guest, room_id=room.room_id, key="song", value="x")
    assert caught.value.code == "property_owned"
    services.property_update(
        member=host, room_id=room.room_id, key="song", value="Hymn", is_force=True
    )
    assert api.get(path(room)).json()["properties"]["song"] == "Hymn"


def test_the_api_writes_any_key_whatever_the_rooms_roles(api: KeyedApi, room: Room) -> None:
    Room.objects.filter(pk=room.pk).update(property_roles=["host"])
    RoomProperty.objects.create(room=room, key="song", value="Ode", owner_user_id="g")
    body = {"properties": {"song": "Hymn"}}
    assert api.post(path(room), body).json()["owners"] == {"song": "g"}  # the owner stays
    assert stored(room) == {"song": ("Hymn", "g")}
    body = {"properties": {"song": "Psalm"}, "userID": "h", "isUpdateOwner": True}
    assert api.post(path(room), body).json()["owners"] == {"song": "h"}
    assert api.post(path(room, "/delete"), {"keys": ["song", "absent"]}).json() == {
        "properties": {},
        "owners": {},
    }
    assert stored(room) == {}


def test_a_users_key_with_is_delete_after_owner_left_goes_when_they_leave(
    api: KeyedApi, room: Room
) -> None:
    ada = add_member(room, "ada")
    body = {"properties": {"hand": "up"}, "userID": "ada", "isDeleteAfterOwnerLeft": True}
    assert api.post(path(room), body).json()["owners"] == {"hand": "ada"}
    services.member_leave(member=ada)
    assert stored(room) == {}
    body = {"properties": {"hand": "up"}, "isDeleteAfterOwnerLeft": True}
    assert_error(api.post(path(room), body), 400, "bad_properties")
    assert stored(room) == {}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"properties": {}}, 400, "bad_properties"),
        ({"properties": {"song": 1}}, 400, "invalid_request"),
        ({"properties": {"k" * 17: "v"}}, 400, "invalid_request"),
        ({"properties": {"é" * 9: "v"}}, 400, "property_key_invalid"),  # 9 letters, 18 bytes
        ({"properties": {"song": "\x00"}}, 400, "invalid_request"),
        ({"properties": {"song": "é" * 513}}, 400, "property_value_too_long"),
        ({"properties": {f"k{i}": "v" for i in range(21)}}, 409, "properties_too_many"),
        ({"properties": {"song": "Ode"}, "owner": "x"}, 400, "invalid_request"),
        ({"properties": {"song": "Ode"}, "userID": ""}, 400, "invalid_request"),
    ],
)
def test_bad_writes_are_refused_and_change_nothing(
    api: KeyedApi, room: Room, body: dict, status: int, code: str
) -> None:
    RoomProperty.objects.create(room=room, key="kept", value="v", owner_user_id="g")
    before = revision(room)
    assert_error(api.post(path(room), body), status, code)
    assert stored(room) == {"kept": ("v", "g")} and revision(room) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"keys": []}, "invalid_request"),
        ({"keys": [""]}, "invalid_request"),
        ({"keys": ["é" * 9]}, "property_key_invalid"),
        ({}, "invalid_request"),
    ],
)
def test_bad_deletes_are_refused(api: KeyedApi, room: Room, body: dict, code: str) -> None:
    RoomProperty.objects.create(room=room, key="kept", value="v", owner_user_id="g")
    assert_error(api.post(path(room, "/delete"), body), 400, code)
    assert stored(room) == {"kept": ("v", "g")}


def test_an_unknown_or_ended_room(api: KeyedApi, room: Room) -> None:
    missing = Room(room_id="nowhere")
    assert_error(api.get(path(missing)), 404, "room_not_found")
    assert_error(api.post(path(missing), {"properties": {"a": "b"}}), 404, "room_not_found")
    services.room_end(room=room)
    assert_error(api.post(path(room), {"properties": {"a": "b"}}), 409, "room_ended")
    assert_error(api.post(path(room, "/delete"), {"keys": ["a"]}), 409, "room_ended")
    assert api.get(path(room)).status_code == 200


def test_a_retried_post_is_done_once(api: KeyedApi, room: Room) -> None:
    before = revision(room)
    first = api.post(path(room), {"properties": {"song": "Ode"}}, key="set-1")
    again = api.post(path(room), {"properties": {"song": "Ode"}}, key="set-1")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert revision(room) == before + 1
    first = api.post(path(room, "/delete"), {"keys": ["song"]}, key="del-1")
    RoomProperty.objects.create(room=room, key="song", value="new", owner_user_id="g")
    again = api.post(path(room, "/delete"), {"keys": ["song"]}, key="del-1")
    assert again.json() == first.json() and stored(room) == {"song": ("new", "g")}
    assert IdempotentRequest.objects.count() == 2


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_the_webhook_hears_every_change(receiver: Receiver) -> None:
    app = hooked_app(receiver.url)
    room = services.room_create(app=app, room_id="jam")
    api = KeyedApi(app)
    api.post(path(room), {"properties": {"song": "Ode", "mood": "calm"}})
    add_member(room, "ada")
    services.property_update(member=room.members.get(), room_id="jam", key="hand", value="up")
    api.post(path(room, "/delete"), {"keys": ["song", "absent"]})
    assert_error(api.post(path(room), {"properties": {"song": 1}}), 400, "invalid_request")

    assert webhooks.deliver_due() == 4
    bodies = [verify(app.app_sign, headers, body) for headers, body in receiver.wait_for(4)]
    told = [(b["event"], b["data"]) for b in bodies[1:]]
    assert bodies[0]["event"] == "room.started"
    assert told == [
        (
            "room.propertiesUpdated",
            {"setProperties": {"song": "Ode", "mood": "calm"}, "deleteProperties": {}},
        ),
        ("room.propertiesUpdated", {"setProperties": {"hand": "up"}, "deleteProperties": {}}),
        ("room.propertiesUpdated", {"setProperties": {}, "deleteProperties": {"song": "Ode"}}),
    ]
    assert all(b["roomID"] == "jam" for b in bodies)


@socket_test
async def test_an_api_change_reaches_the_rooms_sockets_live(room: Room) -> None:
    api = KeyedApi(room.app)
    guest = await Participant.join(room, "guest")
    body = {"properties": {"song": "Ode"}}
    assert (await call(api, "POST", path(room), body)).status_code == 200
    frame = await guest.wait_for(update_with(EVENT, setProperties={"song": "Ode"}))
    assert event_of(frame, EVENT)["deleteProperties"] == {}
    assert (await call(api, "POST", path(room, "/delete"), {"keys": ["song"]})).status_code == 200
    await guest.wait_for(update_with(EVENT, deleteProperties={"song": "Ode"}))
    await guest.leave()
