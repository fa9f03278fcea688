"""Participants on a real server (tests/servers.py) over real websockets, for the fault tests:
each keeps the newest room state it was sent and the close code it got."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from rooms.models import App
from rooms.tokens import token_mint
from tests.room_frames import with_members
from tests.servers import LiveServer, manage, query

DEMO_APP, DEMO_ROOM = 1234567, "demo"


POSTGRES = "postgres://postgres@127.0.0.1:5432/"  # the shared server: a database of our own
REDIS = "redis://127.0.0.1:6379/0"  # the shared one, never killed: a prefix of our own


@functools.cache
def migrated_postgres() -> str:
    """A database with every migration applied, made once per test run and dropped at its
    end: each test's database is a copy (CREATE DATABASE ... TEMPLATE), already migrated."""
    name = f"liveaudio_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES + "postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    atexit.register(_drop, name)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "liveaudio.settings"}
    manage({**env, "LIVEAUDIO_DATABASE_URL": POSTGRES + name}, "migrate", "-v0")
    return name


def _drop(name: str) -> None:
    with psycopg.connect(POSTGRES + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test's servers, dropped afterwards."""
    name = f"liveaudio_test_{uuid.uuid4().hex[:8]}"
    template = migrated_postgres()
    with psycopg.connect(POSTGRES + "postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield POSTGRES + name
    finally:
        _drop(name)


def scale_out_env(database: str) -> dict[str, str]:
    return {
        "LIVEAUDIO_DATABASE_URL": database,
        "LIVEAUDIO_REDIS_URL": REDIS,
        "LIVEAUDIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
    }


def demo_app(server: LiveServer) -> App:
    """The demo app as the server stored it; tokens are minted here as a backend would."""
    return App(app_id=DEMO_APP, app_sign=server.app_sign(DEMO_APP))


def online_in_database(server: LiveServer) -> set[str]:
    return {
        user_id for (user_id,) in query(server, "SELECT user_id FROM rooms_member WHERE online")
    }


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
        client = cls(await connect(url, origin=Origin(server.url)), user_id)
        await client.wait_for(lambda frame: frame["type"] == "room.joined")
        return client

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                text = await self.socket.recv()
                if not isinstance(text, str) or not text.startswith("{"):
                    continue  # HTML for htmx
                frame = json.loads(text)
                if frame["type"] == "room.update":
                    frame["state"] = with_members(self.state or None, frame)
                if frame["type"] in ("room.update", "room.joined"):
                    self.state = frame["state"]
                if predicate(frame):
                    return frame

    async def wait_state(self, predicate: Callable[[dict], bool], timeout: float = 10) -> dict:
        if self.state and predicate(self.state):
            return self.state
        await self.wait_for(
            lambda frame: (
                frame["type"] in ("room.update", "room.joined") and predicate(frame["state"])
            ),
            timeout,
        )
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


def server_process(server: LiveServer) -> subprocess.Popen:
    assert server.process is not None, "the server was never started"
    return server.process


def online_users(state: dict) -> set[str]:
    return {member["user_id"] for member in state["members"] if member["online"]}


def seated_users(state: dict) -> set[str]:
    return {seat["user_id"] for row in state["rows"] for seat in row if seat["user_id"]}
