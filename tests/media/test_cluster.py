"""The scale-out media plane for real: media workers as processes, placed and driven through
the machine's Redis (registry + channels-redis), aiortc bots as browsers (issue 14, point 3).

A speaker on the room's mixer is heard by listeners on two relays; listeners are spread
over the relays; two daphne processes' front ends drive the same room; a killed relay's
listeners are told, offer again and land on the other relay; a killed mixer's room is
placed anew and its relays' listeners hear again without offering at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cluster_helpers import Cluster
from media_helpers import A_TONE, C_TONE, TONES, wait_until

from bench.bot import Bot
from rooms.media.remote import LOST, RemoteMedia

ROOM = 7


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[Cluster]:
    cluster = Cluster()
    try:
        for role, name in (("mixer", "m1"), ("mixer", "m2"), ("relay", "r1"), ("relay", "r2")):
            cluster.start(role, name)
        await cluster.wait_for_workers({"m1", "m2", "r1", "r2"})
        yield cluster
    finally:
        await cluster.close()


class Peers:
    """Bots joined through a front end, and the closures it reported for them."""

    def __init__(self, front: RemoteMedia) -> None:
        self.front = front
        self.bots: dict[str, Bot] = {}
        self.closed: list[tuple[str, str, float]] = []
        front.subscribe_peer_closed(
            ROOM, lambda user, reason: self.closed.append((user, reason, time.monotonic()))
        )

    async def join(self, name: str, tone: float | None, *, listener: bool) -> Bot:
        old = self.bots.pop(name, None)
        if old is not None:
            await old.close()
        bot = Bot(name, tone)
        answer = await self.front.offer(ROOM, name, await bot.create_offer(), listener=listener)
        await bot.accept_answer(answer)
        self.bots[name] = bot
        return bot

    async def close(self) -> None:
        for bot in self.bots.values():
            await bot.close()


@pytest_asyncio.fixture
async def peers(cluster: Cluster) -> AsyncIterator[Peers]:
    peers = Peers(cluster.front())
    try:
        yield peers
    finally:
        await peers.close()


async def placement(cluster: Cluster) -> dict[str, str]:
    registry = cluster.registry()
    try:
        return await registry.peers(ROOM)
    finally:
        await registry.close()


@pytest.mark.asyncio
async def test_a_speaker_on_the_mixer_is_heard_by_listeners_spread_over_two_relays(
    cluster: Cluster, peers: Peers
) -> None:
    front = peers.front
    levels: list[dict[str, float]] = []
    front.subscribe_levels(ROOM, levels.append)
    a = await peers.join("A", A_TONE, listener=False)
    front.set_audible(ROOM, {"A"}, revision=1)
    listeners = [await peers.join(name, None, listener=True) for name in ("B", "D", "E", "F")]
    for bot in listeners:
        await wait_until(lambda bot=bot: bot.hears(TONES) == {A_TONE}, 20)
    placed = await placement(cluster)
    mixer = placed["A"]
    assert mixer in ("m1", "m2")
    assert sorted(placed[name] for name in "BDEF") == ["r1", "r1", "r2", "r2"]  # least loaded
    # The speaker's level reached this process through the room's group, as it would a socket.
    await wait_until(lambda: any(report.get("A", 0) > 0 for report in levels), 10)

    # A second daphne process drives the same room: its rule reaches the same mixer.
    other = cluster.front()
    c = Bot("C", C_TONE)
    answer = await other.offer(ROOM, "C", await c.create_offer(), listener=False)
    await c.accept_answer(answer)
    peers.bots["C"] = c
    other.set_audible(ROOM, {"A", "C"}, revision=2)
    for bot in listeners:
        await wait_until(lambda bot=bot: bot.hears(TONES) == {A_TONE, C_TONE}, 20)
    await wait_until(lambda: a.hears(TONES) == {C_TONE}, 20)
    assert (await placement(cluster))["C"] == mixer
    # An older state read by the first process never undoes the newer one.
    front._audible_sent.forget(ROOM)
    front.set_audible(ROOM, {"A"}, revision=1)
    await asyncio.sleep(0.5)  # the rule, were it applied, would have silenced C by now
    for bot in listeners:
        assert bot.hears(TONES, seconds=0.3) == {A_TONE, C_TONE}


@pytest.mark.asyncio
async def test_a_killed_relays_listeners_are_told_and_land_on_the_other_relay(
    cluster: Cluster, peers: Peers
) -> None:
    await peers.join("A", A_TONE, listener=False)
    peers.front.set_audible(ROOM, {"A"}, revision=1)
    for name in ("B", "D"):
        await peers.join(name, None, listener=True)
        await wait_until(lambda name=name: peers.bots[name].hears(TONES) == {A_TONE}, 20)
    placed = await placement(cluster)
    dead = placed["B"]
    survivor = placed["D"]
    assert dead != survivor

    killed = time.monotonic()
    cluster.kill(dead)
    await wait_until(lambda: any(user == "B" for user, _, _ in peers.closed), 10)
    user, reason, told = next(c for c in peers.closed if c[0] == "B")
    assert reason == LOST
    b = await peers.join("B", None, listener=True)  # what the page does on rtc.closed
    await wait_until(lambda: b.hears(TONES) == {A_TONE}, 20)
    heard_again = time.monotonic() - killed
    assert (await placement(cluster))["B"] == survivor
    assert "D" not in {c[0] for c in peers.closed}  # the other relay's listeners were not moved
    print(f"relay killed: told after {told - killed:.2f} s, heard again after {heard_again:.2f} s")


@pytest.mark.asyncio
async def test_a_killed_mixers_room_moves_and_its_relay_listeners_need_not_offer(
    cluster: Cluster, peers: Peers
) -> None:
    await peers.join("A", A_TONE, listener=False)
    peers.front.set_audible(ROOM, {"A"}, revision=1)
    b = await peers.join("B", None, listener=True)
    await wait_until(lambda: b.hears(TONES) == {A_TONE}, 20)
    dead = (await placement(cluster))["A"]

    cluster.kill(dead)
    await wait_until(lambda: any(user == "A" for user, _, _ in peers.closed), 10)
    stalled = b.frames_decoded  # the mix is gone with its mixer: B hears nothing new
    await peers.join("A", A_TONE, listener=False)  # the speaker's page offers again
    # The relay asked the new mixer for B's feed (its refresh), and the mixer asked for the
    # room's rules again (`room_started`): B hears A once more, on the peer it had.
    await wait_until(lambda: b.frames_decoded > stalled + 50, 20)
    await wait_until(lambda: b.hears(TONES) == {A_TONE}, 20)
    placed = await placement(cluster)
    assert placed["A"] != dead and placed["B"] in ("r1", "r2")
    assert "B" not in {c[0] for c in peers.closed}  # B's relay peer went on throughout
