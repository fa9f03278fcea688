"""The per-sender rate of room commands across two real daphne processes (PostgreSQL and
Redis): a user flooding through one process is held back on the other one too."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request

import pytest

from rooms.models import App
from tests.servers import LiveServer
from tests.test_scale_out import DEMO_ROOM, Client, database, demo_app, servers

__all__ = ["database", "demo_app", "servers"]  # the fixtures, shared with test_scale_out


def api_command(server: LiveServer, app: App, user_id: str) -> int:
    """The HTTP API of ``server`` sends a command as ``user_id``: its status."""
    request = urllib.request.Request(
        f"{server.url}/api/v1/rooms/{DEMO_ROOM}/commands",
        data=json.dumps({"command": "eA==", "userID": user_id}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(f"{app.app_id}:{app.app_sign}".encode()).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.mark.asyncio
async def test_a_flood_on_one_process_holds_the_sender_back_on_the_other(
    servers: list[LiveServer], demo_app: App
) -> None:
    first, second = servers
    ann = await Client.join(first, demo_app, "rate-ann")
    statuses = []
    for attempt in range(5):
        # A burst at once through the first process, until it refuses one: ann's window is
        # full now; the second process's API speaks for her at once.
        for n in range(20):
            command = {"action": "room.sendCommand", "roomID": DEMO_ROOM, "command": "eA=="}
            await ann.socket.send(json.dumps({**command, "requestID": f"{attempt}-{n}"}))
        await ann.wait_for(lambda f: f.get("code") == "command_rate_limited")
        statuses.append(await asyncio.to_thread(api_command, second, demo_app, "rate-ann"))
    # Counted by each process alone, the second would have let all five through.
    assert statuses.count(429) >= 3, statuses
    assert await asyncio.to_thread(api_command, second, demo_app, "rate-bob") == 200
    await ann.socket.close()
