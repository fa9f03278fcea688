"""The embed SDK's server half: ``POST /embed/sessions/``, the session's page and socket.

The request's rules run through Django's test client (the real view and services); CORS, the
page and the socket also run against a real daphne process, as a browser would meet them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import jwt
import pytest
import requests
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from websockets.asyncio.client import ClientConnection, connect

from liveaudio.asgi import application
from rooms.models import App, EmbedSession, Room
from rooms.services import room_create
from rooms.tokens import token_mint
from tests.servers import LiveServer
from tests.socket_client import ORIGIN, Participant

SITE = "https://site.test"  # the conftest app's allowed origin
SIGN = "a" * 64


@pytest.fixture(autouse=True)
def _fresh_rate_limit() -> None:
    cache.clear()


@pytest.fixture
def test_app(db) -> App:
    return App.objects.create(
        app_id=9001, name="Test app", app_sign=SIGN, test_mode=True, allowed_origins=SITE
    )


def post(client: Client, body: object, origin: str | None = SITE, **extra):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        "/embed/sessions/", data, content_type="application/json", **headers, **extra
    )


def body_for(app: App, **fields) -> dict:
    return {"appID": app.app_id, "roomID": "jam", "userID": "u1", "userName": "Ada", **fields}


# --- who may ask --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_host_session_of_a_test_app_creates_the_room_with_its_layout(
    client: Client, test_app: App
) -> None:
    config = {
        "role": "host",
        "seat": {"layout": {"rowConfigs": [{"count": 3}, {"count": 2}]}, "hostIndexes": [1]},
    }
    response = post(client, body_for(test_app, appSign=SIGN, config=config))
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["url"] == f"http://testserver/embed/9001/jam/?session={answer['session']}"
    assert answer["config"]["seat"]["takeIndexWhenJoining"] == 1  # follows the host seats
    assert answer["config"]["turnOnMicrophoneWhenJoining"] is True  # the host preset
    room = Room.objects.get(app=test_app, room_id="jam")
    assert (room.seat_rows, room.host_indexes, room.created_by) == ([3, 2], [1], "u1")
    session = EmbedSession.objects.get(key=answer["session"])
    assert (session.parent_origin, session.role_ceiling, session.user_name) == (SITE, "host", "Ada")
    assert response["Access-Control-Allow-Origin"] == SITE


@pytest.mark.django_db
def test_a_token_session_takes_the_tokens_user_role_and_expiry(client: Client, app: App) -> None:
    room_create(app=app, room_id="jam")
    token = token_mint(app=app, room_id="jam", user_id="u1", user_name="Token name", role="speaker")
    response = post(client, body_for(app, token=token))
    assert response.status_code == 201, response.content
    assert response.json()["config"]["role"] == "audience"  # no config: the audience preset
    session = EmbedSession.objects.get()
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert int(session.expires_at.timestamp()) == exp
    assert (session.user_name, session.role_ceiling) == ("Token name", "speaker")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("credentials", "status", "code"),
    [
        ({}, 401, "token_missing"),
        ({"token": "junk"}, 401, "token_invalid"),
        ({"token": "EXPIRED"}, 401, "token_expired"),
        ({"token": "OTHER_USER"}, 401, "token_wrong_user"),
        ({"token": "OTHER_ROOM"}, 401, "token_wrong_room"),
        ({"appSign": SIGN}, 403, "app_sign_refused"),  # a production app
    ],
)
def test_bad_credentials_are_refused_and_nothing_is_stored(
    client: Client, app: App, credentials: dict, status: int, code: str
) -> None:
    room_create(app=app, room_id="jam")
    mint = {"app": app, "room_id": "jam", "user_id": "u1", "user_name": "U"}
    tokens = {
        "EXPIRED": token_mint(**mint, now=time.time() - 7200),
        "OTHER_USER": token_mint(**{**mint, "user_id": "u2"}),
        "OTHER_ROOM": token_mint(**{**mint, "room_id": "elsewhere"}),
    }
    if "token" in credentials:
        credentials = {"token": tokens.get(credentials["token"], credentials["token"])}
    response = post(client, body_for(app, **credentials))
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["message"]
    assert not EmbedSession.objects.exists()


@pytest.mark.django_db
def test_a_wrong_app_sign_is_refused_even_in_test_mode(client: Client, test_app: App) -> None:
    response = post(client, body_for(test_app, appSign="b" * 64, config={"role": "host"}))
    assert (response.status_code, response.json()["code"]) == (401, "app_sign_invalid")
    assert not Room.objects.filter(app=test_app).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("origin", [None, "https://evil.test", "https://site.test.evil.test"])
def test_an_origin_the_app_does_not_allow_is_refused(client: Client, test_app, origin) -> None:
    response = post(client, body_for(test_app, appSign=SIGN), origin=origin)
    assert (response.status_code, response.json()["code"]) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response
    assert not EmbedSession.objects.exists()


@pytest.mark.django_db
def test_a_bad_config_is_refused_listing_every_bad_field(client: Client, test_app: App) -> None:
    config = {
        "role": "host",
        "seat": {"layout": {"rowConfigs": [{"count": 0}, {"alignment": "middle"}]}},
        "bottomMenuBar": {"hostButtons": ["fly"]},
        "innerText": {"leaveButton": 3, "nope": "x"},
        "colour": "red",
    }
    response = post(client, body_for(test_app, appSign=SIGN, config=config))
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "bad_config" and answer["message"]
    assert {f["field"] for f in answer["fields"]} == {
        "seat.layout.rowConfigs[0].count",
        "seat.layout.rowConfigs[1].alignment",
        "bottomMenuBar.hostButtons[0]",
        "innerText.leaveButton",
        "innerText.nope",
        "colour",
    }
    assert not Room.objects.filter(app=test_app).exists()
    assert not EmbedSession.objects.exists()


@pytest.mark.django_db
def test_an_audience_session_for_a_missing_room_is_not_found(client, test_app: App) -> None:
    response = post(client, body_for(test_app, appSign=SIGN, config={"role": "audience"}))
    assert (response.status_code, response.json()["code"]) == (404, "room_not_found")
    assert not Room.objects.filter(app=test_app).exists()


@pytest.mark.django_db
def test_a_host_whose_token_does_not_allow_host_cannot_create_a_room(client, app: App) -> None:
    token = token_mint(app=app, room_id="jam", user_id="u1", user_name="U", role="speaker")
    response = post(client, body_for(app, token=token, config={"role": "host"}))
    assert (response.status_code, response.json()["code"]) == (404, "room_not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("not json", 400, "bad_request"),
        ("[1, 2]", 400, "bad_request"),
        (json.dumps({"appID": "x", "roomID": "has space", "userID": "", "extra": 1}), 400, None),
        (json.dumps({"config": "x" * 40_000}), 413, "body_too_large"),
    ],
)
def test_a_malformed_request_gets_a_clear_error(client, test_app, body, status, code) -> None:
    response = post(client, body)
    assert response.status_code == status
    answer = response.json()
    assert answer["message"]
    if code:
        assert answer["code"] == code
    else:
        assert answer["code"] == "bad_request"
        assert {f["field"] for f in answer["fields"]} == {
            "extra",
            "appID",
            "roomID",
            "userID",
            "userName",
        }


@pytest.mark.django_db
def test_sessions_are_rate_limited_per_client(client: Client, test_app: App, settings) -> None:
    settings.LIVEAUDIO_EMBED_SESSIONS_PER_MINUTE = 2
    room_create(app=test_app, room_id="jam")
    answers = [post(client, body_for(test_app, appSign=SIGN)) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["code"] == "rate_limited" and answers[2]["Retry-After"]


# --- the session's page ---------------------------------------------------------------------


def make_session(app: App, *, config: dict | None = None, **fields) -> EmbedSession:
    from rooms.config import validate_config

    defaults = {
        "key": f"k{EmbedSession.objects.count()}-" + "x" * 30,
        "room_id": "jam",
        "user_id": "u1",
        "user_name": "Ada",
        "config": validate_config(config or {}),
        "parent_origin": SITE,
        "expires_at": timezone.now() + timedelta(hours=1),
    }
    return EmbedSession.objects.create(app=app, **{**defaults, **fields})


@pytest.mark.django_db
def test_the_session_page_renders_the_config(client: Client, app: App) -> None:
    room_create(app=app, room_id="jam", seat_rows=[3, 2, 1])
    config = {
        "seat": {
            "layout": {"rowConfigs": [{"count": 3, "alignment": "start", "seatSpacing": 4}]},
            "showSoundWaveInAudioMode": False,
        },
        "background": {"imageURL": "https://img.test/bg.png?a=1&b=2"},
        "inRoomMessage": {"showName": False},
        "duration": {"isVisible": True},
        "innerText": {"memberListTitle": "Who's <here>", "sendMessageButton": "Go"},
    }
    session = make_session(app, config=config)
    response = client.get("/embed/424242/jam/", {"session": session.key})
    assert response.status_code == 200
    page = response.content.decode()
    assert f"frame-ancestors {SITE}" in response["Content-Security-Policy"].split("; ")
    assert f'data-parent-origin="{SITE}"' in page
    assert 'ws-connect="/ws/rooms/424242/jam/?session=' + session.key + '"' in page
    assert "liveaudio/bridge.js" in page and 'id="liveaudio-config"' in page
    assert page.count('class="seat-row"') == 3  # the room's rows
    assert "--row-1-align: flex-start; --row-1-gap: 4px" in page
    assert "no-sound-wave" in page and "chat-no-names" in page
    assert 'src="https://img.test/bg.png?a=1&amp;b=2"' in page
    assert "Who&#x27;s &lt;here&gt;" in page and ">Go</button>" in page
    assert 'id="room-timer"' in page
    script = page.split('id="liveaudio-config" type="application/json">')[1]
    embedded = json.loads(script.split("</script>")[0])
    assert embedded["innerText"]["memberListTitle"] == "Who's <here>"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["missing", "unknown", "expired", "other_room"])
def test_the_page_refuses_a_bad_session(client: Client, app: App, kind: str) -> None:
    room_create(app=app, room_id="jam")
    room_create(app=app, room_id="other")
    key = {
        "missing": "",
        "unknown": "nope",
        "expired": make_session(app, expires_at=timezone.now() - timedelta(seconds=1)).key,
        "other_room": make_session(app, room_id="other").key,
    }[kind]
    response = client.get("/embed/424242/jam/", {"session": key})
    assert response.status_code == 403
    assert f"frame-ancestors {SITE}" in response["Content-Security-Policy"].split("; ")


@pytest.mark.django_db
def test_the_site_room_page_uses_its_roles_preset(client: Client) -> None:
    from django.contrib.auth.models import User

    site = App.objects.get(app_id=1)
    user = User.objects.create_user("ada", password="x")
    client.force_login(user)
    room_create(app=site, room_id="jam", created_by=f"site-{user.pk}")
    page = client.get("/rooms/jam/").content.decode()
    config = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert config["role"] == "host" and 'data-parent-origin=""' in page
    assert "role=host" in page and "liveaudio/bridge.js" not in page


# --- the session's socket, in process ---------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_timers")
@pytest.mark.parametrize(
    ("kind", "code", "close"),
    [
        ("unknown", "token_invalid", 4002),
        ("expired", "token_expired", 4003),
        ("other_room", "token_wrong_room", 4004),
        ("extra_option", "bad_request", 4007),
    ],
)
async def test_a_bad_session_is_refused_like_a_bad_token(kind: str, code: str, close: int) -> None:
    @database_sync_to_async
    def setup() -> str:
        app = App.objects.create(app_id=4343, name="A", allowed_origins=SITE)
        room_create(app=app, room_id="jam")
        room_create(app=app, room_id="other")
        return {
            "unknown": "nope",
            "expired": make_session(app, expires_at=timezone.now() - timedelta(seconds=1)).key,
            "other_room": make_session(app, room_id="other").key,
            "extra_option": make_session(app).key + "&role=host",
        }[kind]

    query = await setup()
    communicator = WebsocketCommunicator(
        application, f"/ws/rooms/4343/jam/?session={query}", headers=[ORIGIN]
    )
    await communicator.connect()
    participant = Participant(communicator)
    assert (await participant.wait_for("error"))["code"] == code
    assert await participant.wait_closed() == close
    nobody = Room.objects.filter(room_id="jam", members__isnull=False).exists
    assert not await database_sync_to_async(nobody)()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_timers")
async def test_a_token_that_expires_while_connected_closes_with_4012() -> None:
    @database_sync_to_async
    def setup() -> tuple[Room, str]:
        app = App.objects.create(app_id=4344, name="A")
        room = room_create(app=app, room_id="jam")
        return room, token_mint(app=app, room_id="jam", user_id="u", user_name="U", ttl_seconds=2)

    room, token = await setup()
    participant = await Participant.join(room, "u", token=token)
    error = await participant.wait_for("error")
    assert error["code"] == "token_expired"
    assert (await participant.wait_for("onEnded"))["reason"] == "tokenExpired"
    assert await participant.wait_closed() == 4012


# --- against a real daphne: CORS, the page and the socket --------------------------------------

LIVE_APP, LIVE_PROD_APP = 7700001, 7700002
PARENT = "http://127.0.0.1:1"  # only an Origin header: nothing is served or fetched there


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("embed"))
    server.start(
        also="from rooms.models import App; "
        f"App.objects.create(app_id={LIVE_APP}, name='T', app_sign={SIGN!r}, test_mode=True, "
        f"allowed_origins={PARENT!r}); "
        f"App.objects.create(app_id={LIVE_PROD_APP}, name='P', app_sign={SIGN!r}, "
        f"allowed_origins={PARENT!r})",
    )
    yield server
    server.stop()


def live_post(server: LiveServer, body: dict, origin: str = PARENT) -> requests.Response:
    return requests.post(
        server.url + "/embed/sessions/", json=body, headers={"Origin": origin}, timeout=10
    )


def live_body(room_id: str, user_id: str, **fields) -> dict:
    return {"appID": LIVE_APP, "roomID": room_id, "userID": user_id, "userName": user_id, **fields}


def test_cors_preflight_answers_allowed_origins_only(live: LiveServer) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = requests.options(
        live.url + "/embed/sessions/", headers={"Origin": PARENT, **asked}, timeout=10
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == PARENT
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in allowed.headers["Access-Control-Allow-Headers"]
    other = requests.options(
        live.url + "/embed/sessions/", headers={"Origin": "http://evil.test", **asked}, timeout=10
    )
    assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers


def test_a_session_from_an_allowed_origin_and_refusals_from_others(live: LiveServer) -> None:
    ok = live_post(live, live_body("cors", "h", appSign=SIGN, config={"role": "host"}))
    assert ok.status_code == 201 and ok.headers["Access-Control-Allow-Origin"] == PARENT
    assert ok.json()["url"].startswith(f"{live.url}/embed/{LIVE_APP}/cors/?session=")
    refused = live_post(live, live_body("cors", "h", appSign=SIGN), origin="http://evil.test")
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    production = live_post(live, {**live_body("cors", "h", appSign=SIGN), "appID": LIVE_PROD_APP})
    assert (production.status_code, production.json()["code"]) == (403, "app_sign_refused")
    assert production.headers["Access-Control-Allow-Origin"] == PARENT  # readable by embed.js


class Socket:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.html: list[str] = []

    @classmethod
    async def open(cls, server: LiveServer, url: str) -> Socket:
        path = url.removeprefix(server.url)
        app_room, query = path.removeprefix("/embed/").split("?")
        return cls(await connect(f"{server.ws_url}/ws/rooms/{app_room}?{query}", origin=server.url))

    async def wait_for(self, predicate, timeout: float = 10) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                text = await self.socket.recv()
                if not text.startswith("{"):
                    self.html.append(text)
                elif predicate(frame := json.loads(text)):
                    return frame


HOST_CONFIG = {
    "role": "host",
    "seat": {
        "layout": {"rowConfigs": [{"count": 2}, {"count": 3}]},
        "hostIndexes": [1],
        "closeWhenJoining": True,
    },
    "bottomMenuBar": {"hostButtons": ["toggleMicrophoneButton", "leaveButton"]},
    "confirmDialogInfo": {"title": "Bye", "message": "Really go?"},
    "innerText": {"turnOffMicrophoneButton": "Hush"},
}


@pytest.mark.asyncio
async def test_a_session_socket_joins_with_the_configs_join_options(live: LiveServer) -> None:
    answer = live_post(live, live_body("joins", "host-1", appSign=SIGN, config=HOST_CONFIG)).json()
    page = requests.get(answer["url"], timeout=10)
    assert page.status_code == 200
    assert f"frame-ancestors {PARENT}" in page.headers["Content-Security-Policy"].split("; ")
    assert page.text.count('class="seat-row"') == 2
    host = await Socket.open(live, answer["url"])
    joined = await host.wait_for(lambda f: f["type"] == "room.joined")
    seats = [seat for row in joined["state"]["rows"] for seat in row]
    assert [len(row) for row in joined["state"]["rows"]] == [2, 3]
    assert seats[1]["user_id"] == "host-1" and seats[1]["mic_on"] is True  # mic on when joining
    assert all(seat["locked"] for seat in seats)  # closeWhenJoining
    bar = next(html for html in host.html if 'id="bottom-bar"' in html)
    assert ">Hush</button>" in bar and 'data-confirm="Really go?"' in bar
    assert 'data-confirm-title="Bye"' in bar
    assert 'id="end-room"' not in bar and 'id="lock-all"' not in bar  # not in hostButtons

    # An audience member's session: their own bar, the host's room.
    listener_config = {"bottomMenuBar": {"audienceButtons": ["leaveButton"]}}
    listener_answer = live_post(
        live, live_body("joins", "ear-1", appSign=SIGN, config=listener_config)
    ).json()
    listener = await Socket.open(live, listener_answer["url"])
    await listener.wait_for(lambda f: f["type"] == "room.joined")
    listener_bar = next(html for html in listener.html if 'id="bottom-bar"' in html)
    assert 'id="raise-hand"' not in listener_bar and 'id="leave-room"' in listener_bar
    await host.socket.close()
    await listener.socket.close()


@pytest.mark.asyncio
async def test_a_session_socket_closes_with_4012_when_its_token_expires(live: LiveServer) -> None:
    app = App(app_id=LIVE_APP, app_sign=SIGN)
    token = token_mint(
        app=app, room_id="short", user_id="h", user_name="H", role="host", ttl_seconds=3
    )
    answer = live_post(live, live_body("short", "h", token=token, config={"role": "host"}))
    assert answer.status_code == 201, answer.text
    host = await Socket.open(live, answer.json()["url"])
    await host.wait_for(lambda f: f["type"] == "room.joined")
    error = await host.wait_for(lambda f: f["type"] == "error")
    assert error["code"] == "token_expired"
    async with asyncio.timeout(10):
        await host.socket.wait_closed()
    assert host.socket.close_code == 4012


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("settled_timers")
async def test_a_sessions_own_view_of_the_seats_and_members_stays_its_own() -> None:
    """Texts, avatars and hidden users change the shared parts for this socket only."""

    @database_sync_to_async
    def setup() -> tuple[Room, str]:
        app = App.objects.create(app_id=4345, name="A", allowed_origins=SITE)
        room = room_create(app=app, room_id="jam")
        config = {
            "seat": {"avatarURL": "https://img.test/{userID}.png"},
            "memberList": {"hiddenUsers": ["ghost"], "showMicrophoneState": False},
            "innerText": {"memberListTitle": "Crowd"},
        }
        return room, make_session(app, config=config, user_id="viewer").key

    room, key = await setup()
    communicator = WebsocketCommunicator(
        application, f"/ws/rooms/4345/jam/?session={key}", headers=[ORIGIN]
    )
    await communicator.connect()
    viewer = Participant(communicator)
    await viewer.wait_for("room.joined")
    welcome = await viewer.wait_for_html('id="members"')
    assert "Crowd" in welcome
    ghost = await Participant.join(room, "ghost")
    plain = await Participant.join(room, "plain")
    await ghost.request("seat.take", index=2)
    seen = await viewer.wait_for_html('src="https://img.test/ghost.png"')
    members = seen.split('id="members"')[1]
    assert 'data-user-id="ghost"' not in members and 'data-user-id="plain"' in members
    assert "Crowd" in members and 'class="mic"' not in members
    shared = await plain.wait_for_html('data-user-id="ghost" class="member')  # others see all
    assert "In the room" in shared and "img.test" not in shared
    for participant in (viewer, ghost, plain):
        await participant.leave()
