"""Every entry point refuses text that cannot be stored or shown with a clear 4xx / error code
(``rooms.text``), and stores nothing: chat, the HTTP API, the lobby form, embed sessions.

They pass on PostgreSQL too (``LIVEAUDIO_DATABASE_URL=postgres://postgres@127.0.0.1:5432/x``,
where a NUL in text raises on insert); ``test_api_outage_postgres.py`` always runs there."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from rooms import services
from rooms.models import App, EmbedSession, Message, Room
from rooms.services import ServiceError
from tests.conftest import add_member
from tests.test_api import Api, assert_error

pytestmark = pytest.mark.django_db
SITE = "https://site.test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture
def api(app: App) -> Api:
    return Api(app)


# --- chat --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["hi \ud800", "nul\x00", "escape \x1b[2J", "c1 \x9b"])
def test_chat_text_that_cannot_be_stored_is_refused(room: Room, text: str) -> None:
    member = add_member(room, "ada")
    with pytest.raises(ServiceError) as caught:
        services.message_send(member=member, text=text)
    assert caught.value.code == "invalid_text"
    caught.value.message.encode("utf-8")
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "attributes",
    [
        {"note": "nul\x00"},
        {"k\ud800": 1},
        {"n": float("inf")},
        {"deep": json.loads("[" * 20 + "]" * 20)},
        {"big": "x" * 9000},
        ["not", "an", "object"],
    ],
)
def test_chat_attributes_are_checked_like_text(room: Room, attributes: object) -> None:
    member = add_member(room, "ada")
    with pytest.raises(ServiceError) as caught:
        services.message_send(member=member, text="hi", attributes=attributes)
    assert caught.value.code == "invalid_text" and caught.value.message
    assert not Message.objects.exists()


def test_a_system_message_is_checked_like_any_other_and_keeps_line_breaks(room: Room) -> None:
    with pytest.raises(ServiceError):
        services.message_send_system(room=room, text="nul\x00")
    message = services.message_send_system(room=room, text="one\n\ttwo")
    assert list(Message.objects.values_list("pk", "text")) == [(message.pk, "one\n\ttwo")]


# --- the HTTP API ------------------------------------------------------------------------


def test_the_api_refuses_a_user_id_that_cannot_be_stored_with_a_message(
    api: Api, room: Room
) -> None:
    add_member(room, "ab")
    for path_id in ["a%00b", "bell%07"]:
        response = api.post(f"/rooms/{room.room_id}/members/{path_id}/kick")
        assert_error(response, 400, "invalid_request")
    assert room.members.get().online


def test_api_text_with_c1_control_characters_is_refused(api: Api, room: Room) -> None:
    for text in ["next line \x85", "csi \x9b"]:
        assert_error(
            api.post(f"/rooms/{room.room_id}/messages", {"text": text}), 400, "invalid_request"
        )
    assert_error(api.post("/rooms", {"roomID": "x", "title": "c1 \x85"}), 400, "invalid_request")
    body = {"roomID": "r", "userID": "u\u2028", "userName": "U"}
    assert_error(api.post("/tokens", body), 400, "invalid_request")
    assert not Message.objects.exists() and Room.objects.count() == 1


def test_an_api_body_nested_too_deep_is_refused_saying_so(api: Api, room: Room) -> None:
    deep = '{"text": ' + "[" * 5000 + "]" * 5000 + "}"
    response = api.client.post(
        f"/api/v1/rooms/{room.room_id}/messages",
        deep,
        content_type="application/json",
        HTTP_AUTHORIZATION=api.auth,
    )
    body = assert_error(response, 400, "bad_request")
    assert "nested more than" in body["message"]
    assert not Message.objects.exists()


# --- the lobby form ----------------------------------------------------------------------


def test_the_lobby_refuses_a_title_with_control_characters(client: Client) -> None:
    client.force_login(User.objects.create_user("ada", password="x"))
    response = client.post("/rooms/new/", {"title": "bell\x07", "room_id": "jam"})
    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert not Room.objects.filter(room_id="jam").exists()


# --- embed sessions ----------------------------------------------------------------------


@pytest.fixture
def test_app() -> App:
    return App.objects.create(
        app_id=9001, name="Test app", app_sign="a" * 64, test_mode=True, allowed_origins=SITE
    )


def session_post(client: Client, body: dict):
    return client.post(
        "/embed/sessions/", json.dumps(body), content_type="application/json", HTTP_ORIGIN=SITE
    )


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"config": {"confirmDialogInfo": {"title": "nul\x00"}}}, "bad_config", "config"),
        ({"config": {"innerText": {"leaveButton": "\ud800"}}}, "bad_config", "config"),
        ({"roomID": "jam\n"}, "bad_request", "roomID"),
        ({"userID": "two\nlines"}, "bad_request", "userID"),
        ({"userName": "Ada\x00"}, "bad_request", "userName"),
        ({"appSign": "\ud800" * 4}, "bad_request", "appSign"),
    ],
)
def test_an_embed_session_with_text_that_cannot_be_stored_is_refused(
    client: Client, test_app: App, fields: dict, code: str, field: str
) -> None:
    body = {"appID": 9001, "roomID": "jam", "userID": "u1", "userName": "Ada", "appSign": "a" * 64}
    response = session_post(client, {**body, **fields})
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == code and answer["message"]
    assert [f["field"] for f in answer["fields"]] == [field]
    assert not EmbedSession.objects.exists() and not Room.objects.filter(app=test_app).exists()


def test_an_embed_session_body_nested_too_deep_is_refused(client: Client, test_app: App) -> None:
    deep = '{"config": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post(
        "/embed/sessions/", deep, content_type="application/json", HTTP_ORIGIN=SITE
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "nested more than" in response.json()["message"]
