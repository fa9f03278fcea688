"""A join storm on the real server (daphne, SQLite, the in-memory channel layer): 200 sockets
join within 5 s, and every one of them ends on the room's revision in the database."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidMessage

from rooms.tokens import token_mint
from tests.live_clients import DEMO_APP, DEMO_ROOM, demo_app, query
from tests.servers import LiveServer

JOINERS = 200


class Watcher:
    """One joiner, reading every frame: the newest room revision it was shown."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.revision = -1
        self.joined = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.socket:
            if isinstance(text, str) and text.startswith("{"):
                frame = json.loads(text)
                if frame.get("type") in ("room.joined", "room.update"):
                    self.revision = max(self.revision, frame["state"]["revision"])
                    self.joined.set()


def database_revision(server: LiveServer) -> int:
    [(revision,)] = query(
        server,
        "SELECT revision FROM rooms_room r JOIN rooms_app a ON r.app_id = a.id"
        " WHERE a.app_id = ? AND r.room_id = ?",
        DEMO_APP,
        DEMO_ROOM,
    )
    return revision


@pytest.mark.asyncio
async def test_after_a_join_storm_every_socket_shows_the_rooms_revision(server) -> None:
    app = demo_app(server)

    async def join(n: int) -> Watcher:
        await asyncio.sleep(n * 5.0 / JOINERS)  # spread over 5 s, as the storm was
        token = token_mint(app=app, room_id=DEMO_ROOM, user_id=f"u{n}", user_name=f"U{n}")
        url = f"{server.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={token}"
        for attempt in range(10):  # a handshake the busy server dropped is tried again later,
            try:  # as pages do
                socket = await connect(url, origin=server.url, open_timeout=60, max_size=2**24)
            except (OSError, InvalidHandshake, InvalidMessage):
                await asyncio.sleep(1 + attempt)
                continue
            return Watcher(socket)
        raise AssertionError(f"u{n} could not connect")

    watchers = await asyncio.gather(*(join(n) for n in range(JOINERS)))
    await asyncio.wait_for(asyncio.gather(*(w.joined.wait() for w in watchers)), 120)
    revision = database_revision(server)
    last_join = time.monotonic()
    async with asyncio.timeout(60):  # generous on a loaded machine; measured: see below
        while any(w.revision < revision for w in watchers):
            await asyncio.sleep(0.05)
            revision = database_revision(server)
    caught_up = time.monotonic() - last_join
    behind = [w.revision for w in watchers if w.revision != revision]
    assert behind == [], f"{len(behind)} sockets behind revision {revision}"
    print(f"every socket on revision {revision} {caught_up:.2f} s after the last welcome")
    for watcher in watchers:
        await watcher.socket.close()
        watcher.reader.cancel()
