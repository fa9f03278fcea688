"""The server HTTP API (/api/v1/): its schema fuzzed, its authentication, and each endpoint's
effect seen in the database and live on a participant's socket."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import pytest
import schemathesis
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, assume
from hypothesis import settings as hypothesis_settings

from liveaudio.wsgi import application
from rooms import services
from rooms.models import App, IdempotentRequest, Member, Message, Room, Seat
from rooms.tokens import token_verify
from tests.conftest import add_member
from tests.socket_client import SOCKET_TESTS, Participant

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


def basic(app_id: object, app_sign: str) -> str:
    return "Basic " + base64.b64encode(f"{app_id}:{app_sign}".encode()).decode()


class Api:
    """Django's test client, signed in as one app (HTTP Basic on every request)."""

    def __init__(self, app: App, client: Client | None = None) -> None:
        self.client = client or Client()
        self.auth = basic(app.app_id, app.app_sign)

    def get(self, path: str, **query: object):
        return self.client.get(f"/api/v1{path}", query, HTTP_AUTHORIZATION=self.auth)

    def post(self, path: str, body: object = None):
        data = "" if body is None else json.dumps(body)
        return self.client.post(
            f"/api/v1{path}", data, content_type="application/json", HTTP_AUTHORIZATION=self.auth
        )


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture
def api(app: App) -> Api:
    return Api(app)


@pytest.fixture
def other_app(db) -> App:
    return App.objects.create(app_id=515151, name="Someone else")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


# --- the schema, fuzzed ---------------------------------------------------------------------


def over_property_bytes(body: object) -> bool:
    """A room property's limits are UTF-8 bytes (ZIM's: a key 16, a value 1,024), which JSON
    Schema cannot state: its character limits admit 16 accented letters, which the server
    refuses (400, tested in tests/test_api_properties.py). Such a case is not a valid one."""
    if not isinstance(body, dict):
        return False
    properties = body.get("properties")
    keys = body.get("keys")
    pairs = list(properties.items()) if isinstance(properties, dict) else []
    pairs += [(key, "") for key in keys] if isinstance(keys, list) else []
    return any(
        len(str(key).encode("utf-8", "surrogatepass")) > 16
        or len(str(value).encode("utf-8", "surrogatepass")) > 1024
        for key, value in pairs
    )


@schema.parametrize()
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@pytest.mark.django_db
def test_every_operation_keeps_to_its_schema(case, app: App, room: Room) -> None:
    """Generated valid and invalid requests: never a 5xx, every status and body documented,
    invalid input refused, auth enforced (schemathesis' default checks)."""
    # An extra query key whose generated value is an empty list is not sent at all, so such a
    # "negative" request is in fact a valid one: leave those out.
    assume(not any(value == [] for value in (case.query or {}).values()))
    assume(not over_property_bytes(case.body))
    Member.objects.update_or_create(
        room=room, user_id="u-42", defaults={"user_name": "U", "online": True, "banned": False}
    )
    cache.clear()
    IdempotentRequest.objects.all().delete()  # a key reused across cases would answer 422
    case.call_and_validate(headers={"Authorization": basic(app.app_id, app.app_sign)})


@pytest.mark.django_db
def test_schema_and_docs_are_served_from_this_server_only(client: Client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["components"]["securitySchemes"]["AppSignAuth"]["scheme"] == "basic"
    assert "/api/v1/rooms/{roomID}/members/{userID}/kick" in document["paths"]
    page = client.get("/api/v1/docs").content.decode()
    assert "/api/v1/openapi.json" in page
    assert "//" not in page.replace("<!DOCTYPE html>", "")  # no other server's URL
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-init.js"]:
        assert f'"/api/v1/docs/assets/{asset}"' in page
        assert client.get(f"/api/v1/docs/assets/{asset}").status_code == 200
    assert client.get("/api/v1/docs/assets/..%2Fswagger.html").status_code == 404


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    ["none", "wrong sign", "another app's sign", "unknown app", "not basic", "not base64"],
)
def test_requests_without_the_apps_own_sign_are_refused(
    client: Client, app: App, other_app: App, room: Room, credentials: str
) -> None:
    header = {
        "none": None,
        "wrong sign": basic(app.app_id, "0" * 64),
        "another app's sign": basic(app.app_id, other_app.app_sign),
        "unknown app": basic(999, app.app_sign),
        "not basic": f"Bearer {app.app_sign}",
        "not base64": "Basic ???",
    }[credentials]
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    for response in [
        client.get("/api/v1/rooms", **extra),
        client.post("/api/v1/rooms", {"roomID": "new"}, content_type="application/json", **extra),
        client.post(f"/api/v1/rooms/{room.room_id}/end", **extra),
    ]:
        assert_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"].startswith("Basic")
    room.refresh_from_db()
    assert room.is_live and not Room.objects.filter(room_id="new").exists()


def test_an_app_sees_only_its_own_rooms(app: App, other_app: App, room: Room) -> None:
    add_member(room, "a")
    theirs = Api(other_app)
    assert theirs.get("/rooms").json() == {"rooms": []}
    for response in [
        theirs.get(f"/rooms/{room.room_id}"),
        theirs.get(f"/rooms/{room.room_id}/members"),
        theirs.get(f"/rooms/{room.room_id}/seats"),
        theirs.post(f"/rooms/{room.room_id}/members/a/kick"),
        theirs.post(f"/rooms/{room.room_id}/messages", {"text": "hi"}),
        theirs.post(f"/rooms/{room.room_id}/end"),
    ]:
        assert_error(response, 404, "room_not_found")
    room.refresh_from_db()
    assert room.is_live and Member.objects.get(room=room, user_id="a").online
    assert not Message.objects.exists()
    # The same roomID in another app is another room.
    assert theirs.post("/rooms", {"roomID": room.room_id}).status_code == 201


def test_csrf_does_not_apply_to_server_to_server_calls(app: App) -> None:
    api = Api(app, Client(enforce_csrf_checks=True))
    assert api.post("/rooms", {"roomID": "no-csrf"}).status_code == 201


# --- tokens ---------------------------------------------------------------------------------


def test_token_endpoint_mints_a_token_the_room_accepts(api: Api, app: App) -> None:
    before = int(time.time())
    response = api.post(
        "/tokens",
        {"roomID": "later", "userID": "u-1", "userName": "Ada", "role": "host", "ttlSeconds": 600},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    claims = token_verify(token=body["token"], app=app, room_id="later")
    assert (claims.user_id, claims.user_name, claims.role) == ("u-1", "Ada", "host")
    assert before + 600 <= body["expiresAt"] <= int(time.time()) + 600


def test_token_requests_out_of_bounds_are_refused_field_by_field(api: Api) -> None:
    response = api.post(
        "/tokens",
        {"roomID": "bad room", "userID": "", "userName": "A", "role": "owner", "ttlSeconds": 5},
    )
    body = assert_error(response, 400, "invalid_request")
    assert {f["field"] for f in body["fields"]} == {"roomID", "userID", "role", "ttlSeconds"}
    body = assert_error(
        api.post("/tokens", {"roomID": "r", "userID": "u", "userName": "U", "admin": True}),
        400,
        "invalid_request",
    )
    assert body["fields"][0]["field"] == "admin"


# --- rooms ----------------------------------------------------------------------------------


def test_rooms_are_created_listed_read_and_ended(api: Api, app: App) -> None:
    created = api.post("/rooms", {"roomID": "jam", "title": "Jam"})
    assert created.status_code == 201
    assert created.json()["roomID"] == "jam" and created.json()["live"] is True
    room = Room.objects.get(app=app, room_id="jam")
    assert room.title == "Jam" and Seat.objects.filter(room=room).count() == room.seat_count
    assert_error(api.post("/rooms", {"roomID": "jam"}), 409, "room_exists")

    add_member(room, "a")
    listed = api.get("/rooms").json()["rooms"]
    assert [(r["roomID"], r["onlineCount"]) for r in listed] == [("jam", 1)]
    assert api.get("/rooms/jam").json()["seatCount"] == 8

    ended = api.post("/rooms/jam/end")
    assert ended.status_code == 200 and ended.json()["live"] is False
    room.refresh_from_db()
    assert room.ended_at is not None and not room.members.filter(online=True).exists()
    assert api.get("/rooms").json() == {"rooms": []}
    assert [r["roomID"] for r in api.get("/rooms", status="ended").json()["rooms"]] == ["jam"]
    assert api.post("/rooms/jam/end").status_code == 200  # ending twice changes nothing
    assert_error(api.post("/rooms/jam/messages", {"text": "late"}), 409, "room_ended")


def test_malformed_requests_get_a_clear_error_and_change_nothing(api: Api, room: Room) -> None:
    assert_error(api.post("/rooms", {"roomID": "no spaces"}), 400, "invalid_request")
    assert_error(api.post("/rooms", {"roomID": "x", "title": "t" * 121}), 400, "invalid_request")
    assert_error(api.get("/rooms/bad%20id"), 400, "invalid_request")
    assert_error(api.get("/rooms", limit=0), 400, "invalid_request")
    assert_error(api.get("/rooms", sort="name"), 400, "invalid_request")
    raw = api.client.post(
        "/api/v1/rooms", "{not json", content_type="application/json", HTTP_AUTHORIZATION=api.auth
    )
    assert_error(raw, 400, "bad_request")
    huge = api.post("/rooms", {"roomID": "x", "title": "t" * 20_000})
    assert_error(huge, 413, "body_too_large")
    assert list(Room.objects.values_list("room_id", flat=True)) == [room.room_id]
    wrong_method = api.client.delete("/api/v1/rooms", HTTP_AUTHORIZATION=api.auth)
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method["Allow"]
    assert_error(api.get("/no-such-endpoint"), 404, "not_found")


# --- members, chat, seats -------------------------------------------------------------------


def test_members_are_listed_kicked_banned_and_unbanned(api: Api, room: Room) -> None:
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_take(member=a, index=2)
    members = api.get(f"/rooms/{room.room_id}/members").json()["members"]
    assert [(m["userID"], m["role"], m["seatIndex"]) for m in members] == [
        ("a", "speaker", 2),
        ("b", "audience", None),
    ]

    kicked = api.post(f"/rooms/{room.room_id}/members/a/kick")
    assert kicked.status_code == 200 and kicked.json()["online"] is False
    a.refresh_from_db()
    assert not a.online and not a.banned and not Seat.objects.filter(occupant=a).exists()
    assert_error(api.post(f"/rooms/{room.room_id}/members/a/kick"), 404, "user_not_found")

    assert api.post(f"/rooms/{room.room_id}/members/b/ban").json()["banned"] is True
    assert Member.objects.get(pk=b.pk).banned
    banned = api.get(f"/rooms/{room.room_id}/members", banned="true").json()["members"]
    assert [m["userID"] for m in banned] == ["b"]
    assert api.post(f"/rooms/{room.room_id}/members/b/unban").json()["banned"] is False
    assert not Member.objects.get(pk=b.pk).banned
    assert_error(api.post(f"/rooms/{room.room_id}/members/nobody/ban"), 404, "user_not_found")


def test_a_system_message_is_stored_without_a_sender(api: Api, room: Room) -> None:
    response = api.post(f"/rooms/{room.room_id}/messages", {"text": "  Doors close at 10  "})
    assert response.status_code == 201
    body = response.json()
    assert body["userID"] is None and body["userName"] == "System"
    message = Message.objects.get(pk=body["messageID"])
    assert message.sender is None and message.text == "Doors close at 10"
    for text in ["", "   ", "x" * 1001, "bell\x07"]:
        refused = api.post(f"/rooms/{room.room_id}/messages", {"text": text})
        assert_error(refused, 400, "invalid_request")
    assert Message.objects.count() == 1


def test_seats_show_who_sits_where(api: Api, room: Room) -> None:
    a = add_member(room, "a")
    services.seat_take(member=a, index=3)
    services.seat_set_locked(room=room, actor=None, index=5, locked=True)
    body = api.get(f"/rooms/{room.room_id}/seats").json()
    assert body["rows"] == [4, 4]
    seats = body["seats"]
    assert [s["index"] for s in seats] == list(range(8))
    assert seats[0]["isHostSeat"] and seats[5]["locked"]
    assert (seats[3]["userID"], seats[3]["userName"]) == ("a", "A")


# --- live: what people in the room see --------------------------------------------------------


async def call(api: Api, method: str, path: str, body: object = None):
    send = api.get if method == "GET" else api.post
    return await sync_to_async(send)(path, *([] if body is None else [body]))


def socket_test(function):
    """The marks every test of the real consumer needs (``tests.socket_client``)."""
    for mark in reversed(SOCKET_TESTS):
        function = mark(function)
    return function


@pytest.mark.parametrize("user_id", ["team/ann", "a b/kick", "50%/?#&", "two\nlines"])
def test_any_user_id_can_be_kicked_banned_and_unbanned(api: Api, room: Room, user_id: str) -> None:
    """User IDs are any string of 1-128 characters: percent-encoded, slashes included."""
    member = add_member(room, user_id)
    add_member(room, "ann")  # "team/ann" must not reach her
    path = f"/rooms/{room.room_id}/members/{quote(user_id, safe='')}"
    assert api.post(f"{path}/kick").json()["userID"] == user_id
    assert api.post(f"{path}/ban").json()["banned"] is True
    assert api.post(f"{path}/unban").json()["banned"] is False
    member.refresh_from_db()
    assert not member.online and not member.banned
    assert Member.objects.get(room=room, user_id="ann").online


@socket_test
async def test_an_api_kick_closes_the_members_socket(api: Api, room: Room) -> None:
    guest = await Participant.join(room, "guest")
    response = await call(api, "POST", f"/rooms/{room.room_id}/members/guest/kick")
    assert response.status_code == 200
    assert await guest.wait_closed() == 4010


@socket_test
async def test_an_api_message_appears_in_the_room_chat_live(api: Api, room: Room) -> None:
    guest = await Participant.join(room, "guest")
    response = await call(api, "POST", f"/rooms/{room.room_id}/messages", {"text": "Hello"})
    assert response.status_code == 201
    frame = await guest.wait_for("message.onReceived")
    assert frame["message"]["message"] == "Hello"
    assert frame["message"]["user"] == {"id": None, "name": "System"}
    assert await guest.wait_for_html("Hello")
    await guest.leave()


@socket_test
async def test_ending_a_room_over_the_api_closes_every_socket(api: Api, room: Room) -> None:
    host = await Participant.join(room, "host-1", role="host")
    guest = await Participant.join(room, "guest")
    response = await call(api, "POST", f"/rooms/{room.room_id}/end")
    assert response.status_code == 200
    assert await host.wait_closed() == 4011
    assert await guest.wait_closed() == 4011


def test_an_app_over_its_rate_is_told_to_slow_down(api: Api, other_app: App, settings) -> None:
    settings.LIVEAUDIO_API_RATE = "5/m"  # the default, 1200/m, works the same way
    assert [api.get("/rooms").status_code for _ in range(5)] == [200] * 5
    response = api.get("/rooms")
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    assert Api(other_app).get("/rooms").status_code == 200  # another app has its own budget
