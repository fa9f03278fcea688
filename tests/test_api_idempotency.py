"""``Idempotency-Key`` on the HTTP API's POSTs: a retried request is done once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache

from rooms.models import App, IdempotentRequest, Message, Room
from tests.test_api import Api, assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


class KeyedApi(Api):
    def post(self, path: str, body: object = None, *, key: str | None = None):
        data = "" if body is None else json.dumps(body)
        headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
        return self.client.post(
            f"/api/v1{path}",
            data,
            content_type="application/json",
            HTTP_AUTHORIZATION=self.auth,
            **headers,
        )


@pytest.fixture
def api(app: App) -> KeyedApi:
    return KeyedApi(app)


def test_a_retried_message_is_stored_once_and_answered_the_same(api: KeyedApi, room: Room) -> None:
    path = f"/rooms/{room.room_id}/messages"
    first = api.post(path, {"text": "Doors at 10"}, key="msg-1")
    again = api.post(path, {"text": "Doors at 10"}, key="msg-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Message.objects.count() == 1
    assert api.post(path, {"text": "Doors at 10"}, key="msg-2").status_code == 201
    assert api.post(path, {"text": "Doors at 10"}).status_code == 201  # no key: done each time
    assert Message.objects.count() == 3


def test_a_retried_room_creation_gets_its_201_not_a_conflict(api: KeyedApi, app: App) -> None:
    first = api.post("/rooms", {"roomID": "jam"}, key="create-jam")
    again = api.post("/rooms", {"roomID": "jam"}, key="create-jam")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert_error(api.post("/rooms", {"roomID": "jam"}, key="another"), 409, "room_exists")


def test_the_same_key_with_another_body_is_refused_and_does_nothing(
    api: KeyedApi, room: Room
) -> None:
    path = f"/rooms/{room.room_id}/messages"
    assert api.post(path, {"text": "one"}, key="k").status_code == 201
    refused = api.post(path, {"text": "two"}, key="k")
    body = assert_error(refused, 422, "idempotency_key_reused")
    assert "Idempotency-Key" in body["message"]
    assert list(Message.objects.values_list("text", flat=True)) == ["one"]


def test_a_key_is_per_app_and_per_endpoint(api: KeyedApi, app: App, room: Room) -> None:
    other = App.objects.create(app_id=515151, name="Someone else")
    assert KeyedApi(other).post("/rooms", {"roomID": "jam"}, key="k").status_code == 201
    assert api.post("/rooms", {"roomID": "jam"}, key="k").status_code == 201
    assert api.post(f"/rooms/{room.room_id}/messages", {"text": "hi"}, key="k").status_code == 201
    assert Room.objects.filter(room_id="jam").count() == 2 and Message.objects.count() == 1


def test_a_refusal_is_not_kept_so_the_retry_can_succeed(api: KeyedApi, app: App) -> None:
    path = "/rooms/later/end"
    assert_error(api.post(path, key="end-later"), 404, "room_not_found")
    Room.objects.create(app=app, room_id="later", seat_rows=[1], host_indexes=[0])
    assert api.post(path, key="end-later").json()["live"] is False


def test_a_key_is_kept_for_24_hours(api: KeyedApi, room: Room) -> None:
    path = f"/rooms/{room.room_id}/messages"
    api.post(path, {"text": "hi"}, key="daily")
    IdempotentRequest.objects.update(
        created_at=IdempotentRequest.objects.get().created_at - timedelta(hours=25)
    )
    assert "Idempotent-Replayed" not in api.post(path, {"text": "hi"}, key="daily")
    assert Message.objects.count() == 2 and IdempotentRequest.objects.count() == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tkey", "nul\x00"])
def test_a_key_is_limited_in_length_and_checked_as_text(api: KeyedApi, key: str) -> None:
    body = assert_error(api.post("/rooms", {"roomID": "jam"}, key=key), 400, "invalid_request")
    assert "Idempotency-Key" in body["message"]
    assert not Room.objects.filter(room_id="jam").exists()


def test_a_key_without_credentials_replays_nothing(client, api: KeyedApi, room: Room) -> None:
    api.post(f"/rooms/{room.room_id}/messages", {"text": "secret"}, key="k")
    anonymous = client.post(
        f"/api/v1/rooms/{room.room_id}/messages",
        json.dumps({"text": "secret"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert_error(anonymous, 401, "unauthorized")


def test_the_schema_offers_the_key_on_every_post(client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    posts = [ops["post"] for ops in document["paths"].values() if "post" in ops]
    assert len(posts) == 12  # 7, the player's play and stop, properties' set and delete, commands
    for operation in posts:
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["Idempotency-Key"] and "422" in operation["responses"]
