"""Room properties across a real restart (daphne in a subprocess, SIGTERM, started again on
the same port): they come back in the next welcome; an ``isDeleteAfterOwnerLeft`` key whose
owner went with the server (and never came back) goes once the grace period is over, by the
sweep of the new process, since the grace timer died with the old one."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_clients import DEMO_ROOM, LiveClient, demo_app, server_process
from tests.servers import LiveServer

pytestmark = pytest.mark.asyncio

EVENT = "room.onPropertiesUpdated"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A grace period longer than a restart takes (the old process's timer dies with it
    during the drain), so the key is still there when bob first looks: the restart took 2 s
    on a loaded 2-core machine, so 7 s; a sweep every second (not every 5 s) finds the grace
    over soon after. The test waits for both: 10 s and 5 s made it 11.6 s."""
    env = {"LIVEAUDIO_SEAT_GRACE_SECONDS": "7", "LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS": "1"}
    server = LiveServer(tmp_path, env=env)
    server.start()
    yield server
    server.stop()


def deleted(keys: dict[str, str]):
    return lambda frame: (
        frame.get("type") == "room.update"
        and any(e["type"] == EVENT and e["deleteProperties"] == keys for e in frame["events"])
    )


async def test_properties_survive_a_restart_and_a_vanished_owners_keys_go_after(
    server: LiveServer,
) -> None:
    app = demo_app(server)
    ann = await LiveClient.join(server, app, "ann")
    set_song = {"roomID": DEMO_ROOM, "key": "song", "value": "Ode"}
    assert (await ann.request("room.updateProperty", **set_song))["type"] == "reply"
    gift = {"roomID": DEMO_ROOM, "key": "gift", "value": "rose", "isDeleteAfterOwnerLeft": True}
    assert (await ann.request("room.updateProperty", **gift))["type"] == "reply"

    os.kill(server_process(server).pid, signal.SIGTERM)
    await ann.wait_closed(30)
    server_process(server).wait(15)
    server.start(set_up=False)

    bob = await LiveClient.join(server, app, "bob")
    assert bob.state["properties"] == {"song": "Ode", "gift": "rose"}
    # Ann is away: the new process's sweep (every few seconds) deletes her key once the
    # grace period is over, and bob hears it.
    await bob.wait_for(deleted({"gift": "rose"}), timeout=30)
    assert bob.state["properties"] == {"song": "Ode"}
    query = await bob.request("room.queryProperties", roomID=DEMO_ROOM)
    assert query["data"]["properties"] == {"song": "Ode"}
    await bob.socket.close()
