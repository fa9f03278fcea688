"""The media player across a real restart (daphne in a subprocess, SIGTERM, started again on
the same port): what was playing comes back paused at the position it had reached, and
resume plays the same file on from there."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from rooms.roles import Role
from rooms.tokens import token_mint
from tests.live_clients import DEMO_APP, DEMO_ROOM, LiveClient, demo_app, query, server_process
from tests.media_files import make_tone_file
from tests.servers import LiveServer

pytestmark = pytest.mark.asyncio


def upload(server: LiveServer, token: str, path: Path) -> str:
    """The page's chunked upload (one chunk: the file is small); the file's mediaID."""
    base = f"{server.url}/media/{DEMO_APP}/{DEMO_ROOM}/uploads/"
    headers = {"Authorization": f"Bearer {token}", "Origin": server.url}

    def call(url: str, method: str, body: bytes, content_type: str) -> dict:
        request = urllib.request.Request(
            url, data=body, method=method, headers={**headers, "Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    data = path.read_bytes()
    start = json.dumps({"name": path.name, "size": len(data)}).encode()
    upload_id = call(base, "POST", start, "application/json")["uploadID"]
    call(f"{base}{upload_id}/?offset=0", "PUT", data, "application/octet-stream")
    return call(f"{base}{upload_id}/finish/", "POST", b"", "application/json")["mediaID"]


async def join_as_host(server: LiveServer, token: str) -> LiveClient:
    url = f"{server.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={token}&role=host"
    client = LiveClient(await connect(url, origin=Origin(server.url)), "host")
    await client.wait_for(lambda frame: frame["type"] == "room.joined")
    return client


def progress_past(ms: int):
    return lambda frame: frame.get("type") == "media.progress" and frame["position"] >= ms


def stored_playback(server: LiveServer) -> tuple[str, int, str]:
    [row] = query(
        server,
        "SELECT p.state, p.position_ms, f.media_id FROM rooms_playback p"
        " JOIN rooms_mediafile f ON f.id = p.media_id",
    )
    return row


async def test_a_restart_resumes_the_same_file_at_the_same_position_paused(
    server: LiveServer, tmp_path: Path
) -> None:
    app = demo_app(server)
    token = token_mint(app=app, room_id=DEMO_ROOM, user_id="host", user_name="Host", role=Role.HOST)
    host = await join_as_host(server, token)  # an upload comes from a member in the room
    media_id = upload(server, token, make_tone_file(tmp_path / "song.wav"))
    assert (await host.request("media.play", filePathOrURL=media_id))["type"] == "reply"
    await host.wait_for(progress_past(1500), 30)  # heard from the worker's playout

    os.kill(server_process(server).pid, signal.SIGTERM)
    await host.wait_closed(30)
    server_process(server).wait(15)
    assert stored_playback(server)[0] == "playing"  # a stop changes nothing stored
    server.start(set_up=False)

    # Nobody has joined yet: the start-up alone pauses it, where the playout had got to.
    async with asyncio.timeout(30):
        while stored_playback(server)[0] != "pausing":
            await asyncio.sleep(0.1)
    state, position, stored_id = stored_playback(server)
    assert stored_id == media_id
    assert 1500 <= position <= 10_000
    host = await join_as_host(server, token)
    assert host.state["media"]["state"] == "pausing"
    assert host.state["media"]["position"] == position
    assert (await host.request("media.resume"))["type"] == "reply"
    frame = await host.wait_for(progress_past(position), 30)
    assert frame["state"] == "playing" and frame["position"] < position + 5000
    await host.socket.close()
