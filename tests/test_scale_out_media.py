"""Scale-out with shared media workers, end to end: two daphne processes on PostgreSQL and
Redis, one mixer and two relays (`python -m rooms.media.node`), bots over the real room
socket. A speaker on one process is heard by listeners on the other, through relays; a
listener who takes a seat is moved to the mixer (issue 14, point 3)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from bench.bot import Bot
from rooms.media import restrict_host_candidates_to_loopback
from rooms.models import App
from tests.media.cluster_helpers import Cluster
from tests.servers import LiveServer, start_sharing
from tests.test_scale_out import Client, database, demo_app

__all__ = ["database", "demo_app"]  # the fixtures, shared with test_scale_out

A_TONE, TONES = 440.0, (440.0, 660.0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    for role, name in (("mixer", "m1"), ("relay", "r1"), ("relay", "r2")):
        cluster.start(role, name)
    yield cluster
    asyncio.run(cluster.close())


@pytest.fixture(scope="module")
def servers(
    database: str, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveServer]]:
    workdir: Path = tmp_path_factory.mktemp("scale-media")
    env = {
        "LIVEAUDIO_DATABASE_URL": database,
        "LIVEAUDIO_REDIS_URL": cluster.url,
        "LIVEAUDIO_REDIS_PREFIX": cluster.prefix,
        "LIVEAUDIO_MEDIA_WORKERS": "shared",
        "LIVEAUDIO_MEDIA_STATS": "1",
    }
    first, second = LiveServer(workdir, env), LiveServer(workdir, env)
    start_sharing(first, second)
    yield [first, second]
    first.stop()
    second.stop()


class Participant:
    """A room socket (`Client`) with a bot's peer behind it, offering as the page does:
    again whenever the server says the connection closed (`rtc.closed`)."""

    def __init__(self, client: Client, bot: Bot, tone: float | None) -> None:
        self.client, self.bot, self.tone = client, bot, tone
        self.closed: list[str] = []
        self._ids = 0

    @classmethod
    async def join(
        cls, server: LiveServer, app: App, user_id: str, tone: float | None = None
    ) -> Participant:
        participant = cls(await Client.join(server, app, user_id), Bot(user_id, tone), tone)
        await participant.offer()
        return participant

    def next_id(self) -> str:
        self._ids += 1
        return f"{self.bot.name}-{self._ids}"

    async def offer(self, *, again: bool = False) -> None:
        if again:  # the page's way: a new RTCPeerConnection
            await self.bot.close()
            self.bot = Bot(self.bot.name, self.tone)
        reply = await self.client.request(
            "rtc.offer", self.next_id(), sdp=await self.bot.create_offer()
        )
        assert reply["type"] == "reply", reply
        await self.bot.accept_answer(reply["data"]["sdp"])

    async def ok(self, action: str, **args: object) -> None:
        reply = await self.client.request(action, self.next_id(), **args)
        assert reply["type"] == "reply", reply

    async def wait_closed(self, reason: str, timeout: float = 15) -> None:
        frame = await self.client.wait_for(lambda f: f["type"] == "rtc.closed", timeout)
        assert frame["reason"] == reason, frame
        self.closed.append(frame["reason"])

    async def close(self) -> None:
        await self.bot.close()
        await self.client.socket.close()


@pytest_asyncio.fixture
async def people() -> AsyncIterator[list[Participant]]:
    restrict_host_candidates_to_loopback()
    joined: list[Participant] = []
    yield joined
    for person in joined:
        await person.close()


async def heard(bot: Bot, tones: set[float], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while bot.hears(TONES) != tones:
            await asyncio.sleep(0.05)


async def placement(cluster: Cluster, room_pk: int | None = None) -> dict[str, str]:
    registry = cluster.registry()
    try:
        keys = [
            key async for key in registry.redis.scan_iter(match=f"{cluster.prefix}:media:peers:*")
        ]
        assert len(keys) == 1, keys  # the one room of this test
        return await registry.peers(keys[0].rsplit(":", 1)[1])
    finally:
        await registry.close()


@pytest.mark.asyncio
async def test_a_speaker_on_one_process_is_heard_through_relays_on_the_other(
    servers: list[LiveServer], cluster: Cluster, demo_app: App, people: list[Participant]
) -> None:
    first, second = servers
    ada = await Participant.join(first, demo_app, "ada", A_TONE)
    people.append(ada)
    bob = await Participant.join(second, demo_app, "bob")
    people.append(bob)
    carol = await Participant.join(first, demo_app, "carol")
    people.append(carol)
    placed = await placement(cluster)
    # Nobody is seated yet: all three listen through the relays, spread over both.
    assert {placed["ada"], placed["bob"], placed["carol"]} == {"r1", "r2"}

    # Ada takes a seat: a relay never carries a voice, so her page is told to offer again,
    # and lands on the room's mixer.
    await ada.ok("seat.take", index=1)
    await ada.wait_closed("moved")
    await ada.offer(again=True)
    await ada.ok("microphone.turnOn", isOn=True)
    assert (await placement(cluster))["ada"] == "m1"

    await heard(bob.bot, {A_TONE})  # the other daphne process's listener, through a relay
    await heard(carol.bot, {A_TONE})
    placed = await placement(cluster)
    assert placed["bob"] in ("r1", "r2") and placed["carol"] in ("r1", "r2")

    # Bob's socket comes back through the first process (his peer on a relay goes on), and
    # he takes a seat there: that process never placed him, and still moves him.
    await bob.client.socket.close()
    bob.client = await Client.join(first, demo_app, "bob")
    await bob.ok("seat.take", index=2)
    await bob.wait_closed("moved")
    await bob.offer(again=True)
    assert (await placement(cluster))["bob"] == "m1"

    # The media stats of a daphne process name the deployment's workers and their peers.
    stats = await asyncio.to_thread(media_stats, second)
    workers = {w["name"]: w for w in stats["workers"]}
    assert {n: w["role"] for n, w in workers.items()} == {
        "m1": "mixer",
        "r1": "relay",
        "r2": "relay",
    }
    assert workers["m1"]["peers"] >= 1


def media_stats(server: LiveServer) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{server.url}/internal/media-stats/", timeout=10) as response:
        return json.loads(response.read())
