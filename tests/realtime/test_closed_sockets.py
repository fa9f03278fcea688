"""A socket that closes while the room talks is no error: the real server (daphne) logs no
traceback for frames that found their socket gone."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from rooms.models import App
from rooms.tokens import token_mint
from tests.servers import LiveServer

DEMO_APP, DEMO_ROOM = 1234567, "demo"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_sockets_closing_mid_chat_log_no_traceback(server: LiveServer) -> None:
    with sqlite3.connect(server.env["LIVEAUDIO_SQLITE_PATH"]) as db:
        sign = db.execute("SELECT app_sign FROM rooms_app WHERE app_id = ?", [DEMO_APP]).fetchone()
    app = App(app_id=DEMO_APP, app_sign=sign[0])

    async def join(user_id: str):
        token = token_mint(app=app, room_id=DEMO_ROOM, user_id=user_id, user_name=user_id)
        url = f"{server.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={token}"
        socket = await connect(url, origin=server.url, max_size=2**24)
        async for text in socket:
            if text.startswith('{"type": "room.joined"'):
                return socket
        raise AssertionError("no welcome")

    chatter = await join("chatter")
    for round_ in range(3):
        listeners = await asyncio.gather(*(join(f"l{round_}-{n}") for n in range(8)))
        for n in range(15):  # 45 in all: within the socket's rate limit
            last = f"r{round_}-m{n}"
            await chatter.send(json.dumps({"action": "message.send", "message": last}))
            if n == 5:  # gone without a goodbye, while messages are on their way to them
                for listener in listeners:
                    listener.transport.abort()
        # The chatter's own copy of the last message: everything before it was sent.
        async with asyncio.timeout(60):
            async for text in chatter:
                frame = json.loads(text) if text.startswith("{") else {}
                if (
                    frame.get("type") == "message.onReceived"
                    and frame["message"]["message"] == last
                ):
                    break
    await chatter.close()
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "closed protocol" not in log
