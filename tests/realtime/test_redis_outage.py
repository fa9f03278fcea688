"""A Redis outage, with a redis-server of the test's own: sockets close with 1011 (the page
says "reconnecting" and htmx tries again), nobody stays online by mistake, and once Redis is
back a join gets the whole room afresh."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_clients import LiveClient, demo_app, online_in_database
from tests.redis_server import RedisServer
from tests.servers import LiveServer

pytestmark = pytest.mark.asyncio


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def server(tmp_path: Path, redis: RedisServer) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, {"LIVEAUDIO_REDIS_URL": redis.url})
    server.start()
    yield server
    server.stop()


async def wait_until(condition, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.1)


async def test_sockets_close_clearly_and_rejoin_once_redis_is_back(server, redis) -> None:
    app = demo_app(server)
    ada = await LiveClient.join(server, app, "ada")
    bob = await LiveClient.join(server, app, "bob")
    await wait_until(lambda: online_in_database(server) == {"ada", "bob"})
    redis.kill()
    # Both sockets lose their channel layer: closed with 1011, which the page shows as
    # "reconnecting…" and htmx's ws extension retries.
    assert await ada.wait_closed(30) == 1011
    assert await bob.wait_closed(30) == 1011
    # Their disconnects still reach the database: nobody stays online by mistake.
    await wait_until(lambda: online_in_database(server) == set())
    redis.start()
    joined = None
    for _ in range(10):  # the page's retries: the first may meet a connection Redis dropped
        try:
            joined = await LiveClient.join(server, app, "ada")
            break
        except Exception:
            await asyncio.sleep(1)
    assert joined is not None, "no join succeeded after Redis came back"
    assert {m["user_id"] for m in joined.state["members"] if m["online"]} == {"ada"}
    assert online_in_database(server) == {"ada"}
