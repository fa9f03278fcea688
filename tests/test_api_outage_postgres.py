"""A real server on PostgreSQL and a Redis of the test's own: the HTTP API through a Redis
outage (a write that committed answers success, once per Idempotency-Key), and text that
PostgreSQL cannot store refused clearly at every entry point instead of a 500 or a 1011."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import jwt
import psycopg
import pytest
import requests
from websockets.asyncio.client import connect

from rooms.models import App
from tests.live_clients import DEMO_APP, DEMO_ROOM, LiveClient, postgres_database
from tests.redis_server import RedisServer
from tests.servers import LiveServer


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def live(
    database: str, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env = {
        "LIVEAUDIO_DATABASE_URL": database,
        "LIVEAUDIO_REDIS_URL": redis.url,
        "LIVEAUDIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
    }
    server = LiveServer(tmp_path_factory.mktemp("live"), env)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def demo_app(live: LiveServer, database: str) -> App:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT app_sign FROM rooms_app WHERE app_id = %s", [DEMO_APP])
        return App(app_id=DEMO_APP, app_sign=row.fetchone()[0])


def count(database: str, sql: str, *args: object) -> int:
    with psycopg.connect(database) as conn:
        return conn.execute(sql, args).fetchone()[0]


def api_post(live: LiveServer, app: App, path: str, body: object = None, **headers: str):
    return requests.post(
        f"{live.url}/api/v1{path}",
        data=b"" if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        auth=(str(app.app_id), app.app_sign),
        timeout=15,
    )


def test_api_writes_answer_success_through_a_redis_outage_and_happen_once(
    live: LiveServer, demo_app: App, redis: RedisServer, database: str
) -> None:
    room = "outage"
    assert api_post(live, demo_app, "/rooms", {"roomID": room}).status_code == 201
    redis.kill()
    try:
        path, body = f"/rooms/{room}/messages", {"text": "Doors close at 10"}
        first = api_post(live, demo_app, path, body, **{"Idempotency-Key": "msg-1"})
        retry = api_post(live, demo_app, path, body, **{"Idempotency-Key": "msg-1"})
        assert (first.status_code, retry.status_code) == (201, 201), first.text
        assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
        sql = "SELECT count(*) FROM rooms_message m JOIN rooms_room r ON r.id = m.room_id"
        assert count(database, sql + " WHERE r.room_id = %s", room) == 1

        ended = api_post(live, demo_app, f"/rooms/{room}/end", **{"Idempotency-Key": "end-1"})
        assert ended.status_code == 200 and ended.json()["live"] is False, ended.text
        ended_at = "SELECT count(*) FROM rooms_room WHERE room_id = %s AND ended_at IS NOT NULL"
        assert count(database, ended_at, room) == 1
    finally:
        redis.start()  # the same port: the server's layer reconnects
    again = api_post(live, demo_app, "/rooms", {"roomID": "after-outage"})
    assert again.status_code == 201, again.text


def signed_token(app: App, **claims: object) -> str:
    now = int(time.time())
    payload = {"app_id": app.app_id, "room_id": DEMO_ROOM, "user_id": "u", "user_name": "U"}
    return jwt.encode(
        {**payload, "iat": now, "exp": now + 600, **claims}, app.app_sign, algorithm="HS256"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("claims", [{"user_id": "nul\x00"}, {"user_name": "Ada\ud800"}])
async def test_a_signed_token_with_text_postgres_cannot_store_closes_with_4002(
    live: LiveServer, demo_app: App, database: str, claims: dict
) -> None:
    url = f"{live.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={signed_token(demo_app, **claims)}"
    client = LiveClient(await connect(url, origin=live.url), "u")
    error = await client.wait_for(lambda frame: frame["type"] == "error")
    assert error["code"] == "token_invalid"
    assert await client.wait_closed() == 4002
    assert count(database, "SELECT count(*) FROM rooms_member WHERE user_name LIKE 'Ada%%'") == 0


@pytest.mark.asyncio
async def test_chat_with_a_nul_is_refused_on_postgres_and_nothing_is_stored(
    live: LiveServer, demo_app: App, database: str
) -> None:
    ada = await LiveClient.join(live, demo_app, "ada-pg")
    try:
        refusals = [
            {"message": "nul\x00"},
            {"message": "lone \ud800"},
            {"message": "ok", "attributes": {"k": "\x00"}},
        ]
        for args in refusals:
            refused = await ada.request("message.send", **args)
            assert refused["type"] == "error", refused
            assert refused["code"] in {"invalid_text", "bad_request"} and refused["message"]
        assert (
            count(database, "SELECT count(*) FROM rooms_message WHERE sender_id IS NOT NULL") == 0
        )
        assert (await ada.request("message.send", message="fine"))["ok"]
    finally:
        await ada.socket.close()


def test_api_and_embed_inputs_with_a_nul_get_a_4xx_on_postgres(
    live: LiveServer, demo_app: App, database: str
) -> None:
    kick = api_post(live, demo_app, f"/rooms/{DEMO_ROOM}/members/a%00b/kick")
    assert kick.status_code == 400 and kick.json()["code"] == "invalid_request", kick.text
    key = api_post(live, demo_app, "/rooms", {"roomID": "k"}, **{"Idempotency-Key": "a\tb"})
    assert key.status_code == 400 and key.json()["code"] == "invalid_request"
    with psycopg.connect(database) as conn:
        sql = "UPDATE rooms_app SET allowed_origins = %s WHERE app_id = %s"
        conn.execute(sql, ["https://site.test", DEMO_APP])
    session = requests.post(
        f"{live.url}/embed/sessions/",
        json={
            "appID": DEMO_APP,
            "roomID": DEMO_ROOM,
            "userID": "u1",
            "userName": "Ada",
            "token": signed_token(demo_app, user_id="u1"),
            "config": {"confirmDialogInfo": {"title": "nul\x00"}},
        },
        headers={"Origin": "https://site.test"},
        timeout=15,
    )
    assert session.status_code == 400 and session.json()["code"] == "bad_config", session.text
    assert count(database, "SELECT count(*) FROM rooms_embedsession") == 0
