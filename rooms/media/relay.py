"""The relay tier's wire: a room's mixes as plain RTP from its mixer to relay workers.

A room's **mixer** (a `RoomMixer` in one media worker) holds the speakers' peers, decodes,
mixes and encodes each distinct mix once. A **relay** (a `RelayRoom` in another worker,
maybe on another host) holds only listeners' peers and does their DTLS/SRTP fan-out; it
never decodes or encodes. Between the two, each mix a relay needs travels once per tick as
one plain RTP packet over UDP (a *feed*): the shape of Janus's `rtp_forward` and
mediasoup's `pipeToRouter`.

The feeds' wire and the mixer's end are in `feeds.py`. This is the relay's end: a
`RelayRoom` per room, which asks for the feeds its listeners need and fans each feed
packet out to them, and the worker's one `FeedReceiver` socket.

A listener whose mutes change moves to the feed for its new mutes when that feed's first
packet comes, not before: no tick goes missing in between.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import av

from .codec import FRAME_SAMPLES, TIME_BASE
from .feeds import Address, parse_feed_packet
from .mixer import MixerStats
from .outbound import DEFAULT_MAX_QUEUED, MixedAudioTrack, fan_out, take_track
from .sei import RTP_MASK

logger = logging.getLogger(__name__)

MAX_TIMELINE_STEP = 10 * 48000  # 10 s: a step further is another mixer's timeline
# (room, feeds): a relay room's wish list changed, {feed_id: mutes}
FeedsHook = Callable[[Any, dict[int, frozenset[str]]], None]


class _RelayFeed:
    __slots__ = ("feed_id", "mutes", "listeners", "joining", "received", "last_sequence")

    def __init__(self, feed_id: int, mutes: frozenset[str]) -> None:
        self.feed_id = feed_id
        self.mutes = mutes
        self.listeners: dict[str, MixedAudioTrack] = {}
        self.joining: set[str] = set()  # move here with this feed's first packet
        self.received = 0
        self.last_sequence: int | None = None


class RelayRoom:
    """A room's listeners on a relay: what `MediaPeer` needs of a mixer, fed by feeds.

    Listeners here send nothing that is heard (their audio never reaches the mixer), so
    sources are dropped; each listener's local mutes pick its feed.
    """

    def __init__(self, room: Any, on_feeds: FeedsHook, max_queued: int = DEFAULT_MAX_QUEUED):
        self.room = room
        self.stats = MixerStats()  # ticks = packets forwarded; the rest stays zero
        self.rtp_origin = 0  # feeds carry the mixer's own RTP timestamps
        self.levels: dict[str, float] = {}
        self._on_feeds = on_feeds
        self._max_queued = max_queued
        self._tracks: dict[str, MixedAudioTrack] = {}
        self._mutes: dict[str, frozenset[str]] = {}
        self._feeds: dict[int, _RelayFeed] = {}  # by id
        self._by_mutes: dict[frozenset[str], _RelayFeed] = {}
        self._feed_of: dict[str, _RelayFeed] = {}  # where a listener hears from now
        self.gaps = 0  # packets a feed skipped, by sequence
        self.timeline_jumps = 0  # a new mixer's timeline, joined to this room's (`_timeline`)
        self._last_in: int | None = None
        self._out = 0

    # -- what MediaPeer calls ----------------------------------------------------------

    def new_track(self) -> MixedAudioTrack:
        return MixedAudioTrack(max_queued=self._max_queued, timestamp_origin=0)

    def add_participant(self, pid: str, track: MixedAudioTrack | None = None) -> MixedAudioTrack:
        track = take_track(self._tracks, pid, track, self.new_track)
        self._place(pid)
        return track

    def attach_source(self, pid: str, source: object) -> None:
        """A listener's own audio is never heard through a relay: not kept."""

    def remove_participant(self, pid: str, *, track: MixedAudioTrack | None = None) -> None:
        if track is not None and self._tracks.get(pid) is not track:
            return
        track = self._tracks.pop(pid, None)
        if track is not None:
            track.stop()
        feed = self._feed_of.pop(pid, None)
        if feed is not None:
            feed.listeners.pop(pid, None)
        for other in self._feeds.values():
            other.joining.discard(pid)
        self._drop_unused()

    # -- rules (what the hub posts) ----------------------------------------------------

    def set_audible(self, pid: str, audible: bool) -> None:
        """Nobody on a relay is mixed: the room's mixer decides that for its speakers."""

    def set_local_mutes(self, pid: str, muted: Iterable[str]) -> None:
        mutes = frozenset(muted)
        if self._mutes.get(pid, frozenset()) == mutes:
            return
        self._mutes[pid] = mutes
        if pid in self._tracks:
            self._place(pid)

    def set_media(self, source: object) -> None:
        """The media file plays in the mixer; its sound is in every feed."""

    def send_sei(self, source: str, sei: object, timestamp: int | None = None) -> bool:
        return False

    def mix_key_for(self, pid: str) -> frozenset[str]:
        return self._mutes.get(pid, frozenset())

    @property
    def encoder_count(self) -> int:
        return 0

    @property
    def participants(self) -> list[str]:
        return list(self._tracks)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        for pid in list(self._tracks):
            self.remove_participant(pid)

    # -- feeds -------------------------------------------------------------------------

    def wanted(self) -> dict[int, frozenset[str]]:
        """The feeds this room needs from its mixer now."""
        return {feed.feed_id: feed.mutes for feed in self._feeds.values()}

    def receive(self, feed_id: int, sequence: int, timestamp: int, payload: bytes) -> bool:
        """A feed packet: to every listener of that feed, in one pass. False: not ours."""
        feed = self._feeds.get(feed_id)
        if feed is None:
            return False
        if feed.joining:
            self._arrive(feed)
        if feed.last_sequence is not None:
            skipped = (sequence - feed.last_sequence - 1) & 0xFFFF
            if skipped < 0x8000:
                self.gaps += skipped
        feed.last_sequence = sequence
        feed.received += 1
        self.stats.ticks += 1
        pts = self._timeline(timestamp)
        if feed.listeners:
            packet = av.Packet(payload)
            packet.pts = pts
            packet.time_base = TIME_BASE
            fan_out(feed.listeners.values(), packet, None, payload)
        return True

    def _timeline(self, timestamp: int) -> int:
        """A feed's RTP timestamp on this room's own timeline, which never jumps.

        It is the mixer's own (so an SEI's stamp holds for a relay's listeners too) until the
        room gets a new mixer (its old one died), whose timeline starts anywhere: the room's
        goes on from where it was, as if the next frame came, instead of jumping by a random
        amount, which a listener's SRTP (and its jitter buffer) would take for a stale packet.
        """
        if self._last_in is None:
            self._last_in = self._out = timestamp
            return timestamp
        delta = ((timestamp - self._last_in + (1 << 31)) & RTP_MASK) - (1 << 31)
        if abs(delta) > MAX_TIMELINE_STEP:
            self.timeline_jumps += 1
            delta = FRAME_SAMPLES
        self._last_in = timestamp
        self._out += delta
        return self._out

    def _place(self, pid: str) -> None:
        """Put a listener on the feed for its mutes: at once if it is new here or the feed
        already flows, else with that feed's first packet (`_arrive`)."""
        mutes = self._mutes.get(pid, frozenset())
        feed = self._by_mutes.get(mutes)
        if feed is None:
            feed = _RelayFeed(secrets.randbits(32), mutes)
            self._feeds[feed.feed_id] = feed
            self._by_mutes[mutes] = feed
            self._on_feeds(self.room, self.wanted())
        for other in self._feeds.values():
            other.joining.discard(pid)
        current = self._feed_of.get(pid)
        if current is feed:
            feed.listeners[pid] = self._tracks[pid]
        elif current is None or feed.received:
            self._move(pid, feed)
            self._drop_unused()
        else:
            feed.joining.add(pid)

    def _arrive(self, feed: _RelayFeed) -> None:
        for pid in list(feed.joining):
            if pid in self._tracks:
                self._move(pid, feed)
        feed.joining.clear()
        self._drop_unused()

    def _move(self, pid: str, feed: _RelayFeed) -> None:
        current = self._feed_of.get(pid)
        if current is not None:
            current.listeners.pop(pid, None)
        feed.listeners[pid] = self._tracks[pid]
        self._feed_of[pid] = feed

    def _drop_unused(self) -> None:
        unused = [f for f in self._feeds.values() if not f.listeners and not f.joining]
        if not unused:
            return
        for feed in unused:
            del self._feeds[feed.feed_id]
            self._by_mutes.pop(feed.mutes, None)
        self._on_feeds(self.room, self.wanted())


class FeedReceiver(asyncio.DatagramProtocol):
    """A relay worker's one UDP socket for every feed it gets: packets to their room.

    Only packets from an address `allow`ed (its rooms' mixers) are read, and only for a feed
    id a room of this relay chose, so nothing else on the network can speak into a room.
    """

    def __init__(self) -> None:
        self._rooms: dict[int, RelayRoom] = {}
        self._allowed: set[Address] = set()
        self.transport: asyncio.DatagramTransport | None = None
        self.refused = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def allow(self, address: Address) -> None:
        self._allowed.add(address)

    def route(self, room: RelayRoom) -> None:
        """Which room each of its feeds belongs to (called whenever its feeds change)."""
        for feed_id in [f for f, r in self._rooms.items() if r is room]:
            del self._rooms[feed_id]
        for feed_id in room.wanted():
            self._rooms[feed_id] = room

    def forget(self, room: RelayRoom) -> None:
        for feed_id in [f for f, r in self._rooms.items() if r is room]:
            del self._rooms[feed_id]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if addr[:2] not in self._allowed:
            self.refused += 1
            return
        parsed = parse_feed_packet(data)
        room = self._rooms.get(parsed[0]) if parsed is not None else None
        if parsed is None or room is None or not room.receive(*parsed):
            self.refused += 1
