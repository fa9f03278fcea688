"""SIGTERM on the real server (daphne, in a subprocess): a graceful stop within 10 s, sockets
told to reconnect (close 4013), members offline; and a hard deadline when a write hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from rooms.lifecycle import CLOSE_SERVER_RESTARTING
from tests.live_clients import (
    LiveClient,
    demo_app,
    online_in_database,
    online_users,
    postgres_database,
    scale_out_env,
    server_process,
)
from tests.servers import LiveServer

pytestmark = pytest.mark.asyncio
EXIT_WITHIN = 10  # seconds, from the signal


# The deadline test's drain and deadline, a third of the defaults (5 s, 9 s): the test waits
# for the deadline, and the defaults' order (drain, then deadline, then EXIT_WITHIN) holds.
SHORT_DEADLINE = {
    "LIVEAUDIO_SHUTDOWN_DRAIN_SECONDS": "1.5",
    "LIVEAUDIO_SHUTDOWN_DEADLINE_SECONDS": "3",
}


@pytest.fixture(params=["sqlite", "postgres+redis"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """One server: the embedded mode, or the scale-out mode (a database of its own);
    "sqlite, short deadline": the embedded mode with SHORT_DEADLINE."""
    with ExitStack() as stack:
        env = {"LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS": "0.5"}
        if request.param == "sqlite, short deadline":
            env |= SHORT_DEADLINE
        if request.param == "postgres+redis":
            env |= scale_out_env(stack.enter_context(postgres_database()))
        server = LiveServer(tmp_path, env)
        server.start()
        yield server
        if server_process(server).poll() is None:
            server_process(server).kill()
            server_process(server).wait(5)


def sigterm(server: LiveServer) -> float:
    os.kill(server_process(server).pid, signal.SIGTERM)
    return time.monotonic()


async def exit_code(server: LiveServer, *, since: float) -> tuple[int, float]:
    """The server's exit status and how long after the signal it came."""
    try:
        code = await asyncio.to_thread(server_process(server).wait, EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server still runs {EXIT_WITHIN} s after SIGTERM")
    return code, time.monotonic() - since


async def test_sigterm_while_sockets_close_stops_gracefully(server: LiveServer) -> None:
    app = demo_app(server)
    people = [await LiveClient.join(server, app, f"user-{i}") for i in range(8)]
    leaving, staying = people[:4], people[4:]
    for person in leaving:
        # The close handshake is done; the server's disconnects (member offline, the room
        # told) are running when the signal comes.
        await person.socket.close()
    code, took = await exit_code(server, since=sigterm(server))
    assert code == 0  # graceful, not the hard deadline
    for person in staying:
        farewell = await person.wait_for(lambda frame: frame["type"] == "error")
        assert farewell["code"] == "server_restarting"  # the page says why, and reconnects
        assert await person.wait_closed() == CLOSE_SERVER_RESTARTING
    assert online_in_database(server) == set()
    assert took < EXIT_WITHIN


@pytest.mark.parametrize("server", ["sqlite, short deadline"], indirect=True)
async def test_sigterm_exits_by_its_deadline_when_a_write_hangs(server: LiveServer) -> None:
    app = demo_app(server)
    ada = await LiveClient.join(server, app, "ada")
    bob = await LiveClient.join(server, app, "bob")
    # Another writer holds the database: ada's disconnect waits on it (SQLite's 20 s timeout).
    blocker = sqlite3.connect(server.env["LIVEAUDIO_SQLITE_PATH"], isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        await ada.socket.close()
        since = sigterm(server)
        assert await bob.wait_closed() == CLOSE_SERVER_RESTARTING
        with pytest.raises(OSError):  # no longer listening
            await LiveClient.join(server, app, "dan")
        code, took = await exit_code(server, since=since)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert code == 1  # the deadline ended it
    assert float(SHORT_DEADLINE["LIVEAUDIO_SHUTDOWN_DEADLINE_SECONDS"]) <= took < EXIT_WITHIN
    # Neither disconnect was written; the next start repairs both.
    assert online_in_database(server) == {"ada", "bob"}
    server.start(set_up=False)
    carol = await LiveClient.join(server, app, "carol")
    state = await carol.wait_state(lambda state: online_users(state) == {"carol"})
    assert online_users(state) == {"carol"}
    assert online_in_database(server) == {"carol"}
    await carol.socket.close()
