"""Participants on a real server (tests/servers.py) over real websockets, for the fault tests:
each keeps the newest room state it was sent and the close code it got."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rooms.models import App
from rooms.tokens import token_mint
from tests.servers import LiveServer

DEMO_APP, DEMO_ROOM = 1234567, "demo"


def demo_app_from_sqlite(server: LiveServer) -> App:
    """The demo app as a SQLite server stored it; tokens are minted here as a backend would."""
    with sqlite3.connect(Path(server.env["LIVEAUDIO_SQLITE_PATH"])) as conn:
        (sign,) = conn.execute(
            "SELECT app_sign FROM rooms_app WHERE app_id = ?", [DEMO_APP]
        ).fetchone()
    return App(app_id=DEMO_APP, app_sign=sign)


class LiveClient:
    def __init__(self, socket: ClientConnection, user_id: str) -> None:
        self.socket = socket
        self.user_id = user_id
        self.state: dict = {}
        self.close_code: int | None = None

    @classmethod
    async def join(cls, server: LiveServer, app: App, user_id: str) -> LiveClient:
        token = token_mint(app=app, room_id=DEMO_ROOM, user_id=user_id, user_name=user_id)
        url = f"{server.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={token}"
        client = cls(await connect(url, origin=server.url), user_id)
        await client.wait_for(lambda frame: frame["type"] == "room.joined")
        return client

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                text = await self.socket.recv()
                if not text.startswith("{"):
                    continue  # HTML for htmx
                frame = json.loads(text)
                if "state" in frame:
                    self.state = frame["state"]
                if predicate(frame):
                    return frame

    async def wait_state(self, predicate: Callable[[dict], bool], timeout: float = 10) -> dict:
        if self.state and predicate(self.state):
            return self.state
        await self.wait_for(lambda frame: "state" in frame and predicate(frame["state"]), timeout)
        return self.state

    async def request(self, action: str, **args: object) -> dict:
        request_id = f"{action}-{id(args)}"
        await self.socket.send(json.dumps({"action": action, "requestID": request_id, **args}))
        return await self.wait_for(lambda frame: frame.get("requestID") == request_id)

    async def wait_closed(self, timeout: float = 10) -> int | None:
        with contextlib.suppress(ConnectionClosed):
            await self.wait_for(lambda frame: False, timeout)
        self.close_code = self.socket.close_code
        return self.close_code


def online_users(state: dict) -> set[str]:
    return {member["user_id"] for member in state["members"] if member["online"]}


def seated_users(state: dict) -> set[str]:
    return {seat["user_id"] for row in state["rows"] for seat in row if seat["user_id"]}
