"""The relay tier in one process: a mixer hub, two relay hubs, real aiortc bots on each, and
the feeds between them as real UDP on loopback (issue 14, point 3)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from media_helpers import A_TONE, C_TONE, TONES, X_TONE, join, wait_until

from bench.bot import Bot
from rooms.media import MediaHub
from rooms.media.errors import MediaError
from rooms.media.feeds import FEED_TTL, FeedSender, feed_packet, parse_feed_packet
from rooms.media.relay import FeedReceiver, RelayRoom

ROOM = "relay-room"


class Tier:
    """One mixer hub and relay hubs, wired as the cluster wires them: each relay's wish
    list goes straight to the mixer (over the channel layer in production)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # how long a wish list takes to reach the mixer
        self.mixer = MediaHub()
        self.relays: list[MediaHub] = []
        self.bots: list[Bot] = []

    async def start(self, relays: int) -> None:
        mixer_address = await self.mixer.open_feeds()
        for _ in range(relays):
            relay = MediaHub(relay=True)
            address = await relay.open_feeds()
            relay._on_feeds = lambda room, wanted, a=address: self._ask(room, a, wanted)
            relay.allow_feeds_from(mixer_address)
            self.relays.append(relay)

    def _ask(self, room: str, address: tuple[str, int], wanted: dict) -> None:
        if self.delay:
            loop = asyncio.get_running_loop()
            loop.call_later(self.delay, self.mixer.ask_feeds, room, address, wanted)
        else:
            self.mixer.ask_feeds(room, address, wanted)

    async def join(self, hub: MediaHub, name: str, tone: float | None) -> Bot:
        bot = await join(hub, ROOM, name, tone)  # type: ignore[arg-type]
        self.bots.append(bot)
        return bot

    async def close(self) -> None:
        for bot in self.bots:
            await bot.close()
        for hub in [*self.relays, self.mixer]:
            await hub.close()


@pytest_asyncio.fixture
async def tier(request: pytest.FixtureRequest) -> AsyncIterator[Tier]:
    tier = Tier(delay=getattr(request, "param", 0.0))
    await tier.start(relays=2)
    try:
        yield tier
    finally:
        await tier.close()


@pytest.mark.asyncio
async def test_listeners_on_two_relays_hear_the_speakers_and_nothing_is_encoded_there(
    tier: Tier,
) -> None:
    first, second = tier.relays
    a = await tier.join(tier.mixer, "A", A_TONE)
    c = await tier.join(tier.mixer, "C", C_TONE)
    tier.mixer.set_audible(ROOM, {"A", "C", "X"})  # X: a relay listener the rules let speak
    b = await tier.join(first, "B", None)
    d = await tier.join(second, "D", None)
    x = await tier.join(second, "X", X_TONE)
    await wait_until(lambda: b.hears(TONES) == {A_TONE, C_TONE}, 15)
    await wait_until(lambda: d.hears(TONES) == {A_TONE, C_TONE}, 15)
    await wait_until(lambda: x.hears(TONES) == {A_TONE, C_TONE}, 15)
    await wait_until(lambda: a.hears(TONES) == {C_TONE}, 15)
    # A relay listener's own audio never reaches a mix, whatever the rules say.
    await wait_until(lambda: min(bot.heard_seconds() for bot in (a, c, b)) >= 1.5, 15)
    for bot in (a, c, b, d):
        assert X_TONE not in bot.hears(TONES, seconds=1.5), bot.name
    # The mixer encodes A's, C's and the audience's mix, shared by both relays' feed.
    mixer = tier.mixer.mixer(ROOM)
    assert mixer is not None and mixer.encoder_count == 3
    assert mixer.feeds is not None and len(mixer.feeds) == 2  # one feed per relay
    relay_room = first.relay_room(ROOM)
    assert relay_room is not None and relay_room.encoder_count == 0
    assert tier.mixer.peer(ROOM, "B") is None and first.peer(ROOM, "B") is not None


@pytest.mark.parametrize("tier", [0.2], indirect=True)  # wishes take a while, as over Redis
@pytest.mark.asyncio
async def test_a_relay_listeners_local_mute_picks_another_feed_without_a_gap(tier: Tier) -> None:
    relay = tier.relays[0]
    await tier.join(tier.mixer, "A", A_TONE)
    await tier.join(tier.mixer, "C", C_TONE)
    tier.mixer.set_audible(ROOM, {"A", "C"})
    b = await tier.join(relay, "B", None)
    e = await tier.join(relay, "E", None)
    await wait_until(lambda: b.hears(TONES) == e.hears(TONES) == {A_TONE, C_TONE}, 15)
    room = relay.relay_room(ROOM)
    assert room is not None and len(room.wanted()) == 1
    before = (await b.receive_stats()).packets_lost

    relay.set_local_mutes(ROOM, "B", {"C"})
    await wait_until(lambda: b.hears(TONES, seconds=0.3) == {A_TONE}, 10)
    assert e.hears(TONES, seconds=0.3) == {A_TONE, C_TONE}
    assert len(room.wanted()) == 2
    relay.set_local_mutes(ROOM, "B", set())
    await wait_until(lambda: b.hears(TONES, seconds=0.3) == {A_TONE, C_TONE}, 10)
    # B went back to the shared feed and the muted one is no longer asked for.
    await wait_until(lambda: len(room.wanted()) == 1, 5)
    mixer = tier.mixer.mixer(ROOM)
    await wait_until(lambda: mixer is not None and len(mixer.feeds or ()) == 1, 5)
    # Moving between feeds cost B no packet: it moved with the new feed's first one.
    assert (await b.receive_stats()).packets_lost == before


@pytest.mark.asyncio
async def test_a_room_is_not_dropped_as_idle_while_its_first_offer_is_answered(tier: Tier) -> None:
    """A worker drops its idle rooms on every beat; an offer being answered (ICE gathering
    takes a while) has no peer in the room yet, and its room must stay: dropped, the new
    peer's track would sit in a stopped room, connected and never fed."""
    relay = tier.relays[0]
    await tier.join(tier.mixer, "A", A_TONE)
    tier.mixer.set_audible(ROOM, {"A"})
    beats_while_answering = 0

    async def beat() -> None:  # the node's beat (every half second there), on every turn
        nonlocal beats_while_answering
        while True:
            media = relay._rooms.get(ROOM)
            if media is not None and not media.peers:
                beats_while_answering += 1
            relay.drop_idle_rooms()
            await asyncio.sleep(0)  # every turn of the loop

    beating = asyncio.create_task(beat())
    try:
        b = await tier.join(relay, "B", None)
    finally:
        beating.cancel()
    assert beats_while_answering > 0  # the beat did come while B's offer was answered
    await wait_until(lambda: b.hears(TONES) == {A_TONE}, 15)
    room = relay.relay_room(ROOM)
    assert room is not None and room.participants == ["B"]


@pytest.mark.asyncio
async def test_an_offer_answered_while_its_room_closes_is_refused_and_leaves_nothing(
    tier: Tier,
) -> None:
    relay = tier.relays[0]
    closed = asyncio.Event()

    async def close_while_answering() -> None:
        while not closed.is_set():
            media = relay._rooms.get(ROOM)
            if media is not None and media.answering:
                await relay.close_room(ROOM)  # the room ended meanwhile
                closed.set()
            await asyncio.sleep(0)

    closing = asyncio.create_task(close_while_answering())
    bot = Bot("B", None)
    tier.bots.append(bot)
    try:
        with pytest.raises(MediaError) as refused:
            await relay.offer(ROOM, "B", await bot.create_offer())
    finally:
        closing.cancel()
    assert closed.is_set() and refused.value.code == "closed"
    assert relay.relay_room(ROOM) is None and relay.peer(ROOM, "B") is None


@pytest.mark.asyncio
async def test_a_room_on_a_relay_ends_with_its_last_listener_and_the_mixer_lets_it_go(
    tier: Tier,
) -> None:
    relay = tier.relays[0]
    b = await tier.join(relay, "B", None)
    mixer = tier.mixer.mixer(ROOM)
    assert mixer is not None  # the relay's wish alone starts the room's mixer
    await wait_until(lambda: b.pc.connectionState == "connected", 15)
    await relay.release(ROOM, "B")
    assert relay.relay_room(ROOM) is None
    assert tier.mixer.mixer(ROOM) is None  # nobody left to mix for: its clock stopped


@pytest.mark.asyncio
async def test_a_mixer_whose_relays_all_died_stops_once_their_feeds_expire(tier: Tier) -> None:
    relay = tier.relays[0]
    b = await tier.join(relay, "B", None)
    await wait_until(lambda: b.pc.connectionState == "connected", 15)
    mixer = tier.mixer.mixer(ROOM)
    assert mixer is not None and mixer.feeds
    relay._on_feeds = None  # the relay dies: it asks for nothing more, not even to stop
    await relay.close()
    tier.mixer.drop_idle_rooms()
    assert tier.mixer.mixer(ROOM) is mixer  # its feed has not expired yet
    mixer.feeds.expire(time.monotonic() + FEED_TTL + 1)  # as its tick does, FEED_TTL later
    tier.mixer.drop_idle_rooms()  # what the node does on every beat
    assert tier.mixer.mixer(ROOM) is None


def test_feed_packets_are_plain_rtp_and_anything_else_is_refused() -> None:
    packet = feed_packet(0xDEADBEEF, 7, 123456, b"opus")
    assert parse_feed_packet(packet) == (0xDEADBEEF, 7, 123456, b"opus")
    assert parse_feed_packet(packet[:12]) is None  # no payload
    assert parse_feed_packet(b"\x90" + packet[1:]) is None  # an extension: not ours
    assert parse_feed_packet(packet[:1] + b"\x00" + packet[2:]) is None  # not Opus
    assert parse_feed_packet(b"") is None


def test_a_relay_reads_only_its_mixers_and_its_own_feed_ids() -> None:
    forwarded: list[int] = []
    room = RelayRoom(ROOM, lambda room, wanted: None)
    room.add_participant("B")
    (feed_id,) = room.wanted()

    def receive(feed: int, sequence: int, timestamp: int, payload: bytes) -> bool:
        forwarded.append(sequence)
        return True

    room.receive = receive  # type: ignore[method-assign]
    receiver = FeedReceiver()
    receiver.route(room)
    receiver.allow(("127.0.0.1", 4000))
    receiver.datagram_received(feed_packet(feed_id, 1, 0, b"x"), ("127.0.0.1", 4000))
    receiver.datagram_received(feed_packet(feed_id, 2, 0, b"x"), ("127.0.0.1", 4001))
    receiver.datagram_received(feed_packet(feed_id ^ 1, 3, 0, b"x"), ("127.0.0.1", 4000))
    receiver.datagram_received(b"\x00junk", ("127.0.0.1", 4000))
    assert forwarded == [1]
    assert receiver.refused == 3


def test_a_mixer_keeps_a_feed_only_while_its_relay_asks() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sender = FeedSender(sock)
        relay = ("127.0.0.1", 4000)
        sender.ask(relay, {1: frozenset(), 2: frozenset({"C"})})
        assert len(sender) == 2 and sender.changed
        sender.changed = False
        sender.ask(relay, {1: frozenset()})  # the relay's whole list: 2 is gone now
        assert [f.feed_id for f in sender.feeds()] == [1] and sender.changed
        (feed,) = sender.feeds()
        sender.expire(feed.expires - 1)
        assert len(sender) == 1
        sender.expire(feed.expires + 0.001)
        assert not sender
        assert FEED_TTL > 2  # several refreshes may be lost before a feed goes


def test_a_relay_rooms_timeline_follows_its_mixer_and_never_jumps_with_a_new_one() -> None:
    room = RelayRoom(ROOM, lambda room, wanted: None)
    start = (1 << 32) - 960  # the mixer's timeline wraps around right away
    assert room._timeline(start) == start  # the mixer's own: an SEI's stamp holds
    assert room._timeline(0) == start + 960  # across the wrap, one frame on
    assert room._timeline(0) == start + 960  # a second feed's packet of the same tick
    assert room._timeline(960 * 3) == start + 960 * 4  # two frames skipped: a gap, as sent
    # The room's mixer died and another took it: its timeline starts anywhere.
    assert room._timeline(123_456_789) == start + 960 * 5
    assert room._timeline(123_456_789 + 960) == start + 960 * 6
    assert room.timeline_jumps == 1
