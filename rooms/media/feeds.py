"""Feeds: a room's mixes as plain RTP from its mixer to the relay workers (`relay.py`).

A relay names each feed it wants: "the room's mix without `mutes`" (a listener's local
mutes; most listeners mute nobody and share one feed) under a random 32-bit id, and the
mixer sends that mix each tick, one RTP packet with the id as its SSRC, to the relay's
address. The mixer keeps a feed only while its relay keeps asking (`FEED_TTL`), so a relay
that dies costs it nothing for long, and a mixer placed anew gets every feed back at the
relays' next refresh (`FEED_REFRESH`).
"""

from __future__ import annotations

import logging
import secrets
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

OPUS_PAYLOAD_TYPE = 111
RTP_HEADER = struct.Struct("!BBHII")  # v/p/x/cc, m/pt, sequence, timestamp, ssrc
FEED_TTL = 6.0  # seconds a mixer keeps a feed nobody asked for again
FEED_REFRESH = 2.0  # how often a relay asks again for the feeds it uses
MAX_DATAGRAM = 1500

Address = tuple[str, int]


def feed_packet(feed_id: int, sequence: int, timestamp: int, payload: bytes) -> bytes:
    """One feed's RTP packet: version 2, no padding, extension or CSRC, Opus."""
    return RTP_HEADER.pack(0x80, OPUS_PAYLOAD_TYPE, sequence, timestamp, feed_id) + payload


def parse_feed_packet(data: bytes) -> tuple[int, int, int, bytes] | None:
    """(feed_id, sequence, timestamp, payload), or None for anything but a plain RTP packet."""
    if len(data) <= RTP_HEADER.size or data[0] != 0x80:
        return None
    _, payload_type, sequence, timestamp, feed_id = RTP_HEADER.unpack_from(data)
    if payload_type & 0x7F != OPUS_PAYLOAD_TYPE:
        return None
    return feed_id, sequence, timestamp, data[RTP_HEADER.size :]


@dataclass
class Feed:
    """One mix a relay asked for: where to, without whom, until when."""

    feed_id: int
    address: Address
    mutes: frozenset[str]
    expires: float
    sequence: int = field(default_factory=lambda: secrets.randbelow(1 << 16))
    sent: int = 0


class FeedSender:
    """A mixer's feeds to its relays, and the one UDP socket they leave by.

    `RoomMixer` calls `key_for` when it regroups (each feed's mix key joins its mixes, so
    a feed shares the encoder of any listener here who hears the same) and `send` with each
    encoded packet.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._feeds: dict[tuple[Address, int], Feed] = {}
        self.changed = False  # the mixer regroups when set
        self.errors = 0

    def __bool__(self) -> bool:
        return bool(self._feeds)

    def __len__(self) -> int:
        return len(self._feeds)

    def ask(self, address: Address, feeds: dict[int, frozenset[str]]) -> None:
        """A relay's wish list for this room: add the new, renew the rest; a feed it no
        longer lists goes now."""
        now = time.monotonic()
        for key in [k for k in self._feeds if k[0] == address and k[1] not in feeds]:
            del self._feeds[key]
            self.changed = True
        for feed_id, mutes in feeds.items():
            feed = self._feeds.get((address, feed_id))
            if feed is None or feed.mutes != mutes:
                self._feeds[(address, feed_id)] = Feed(feed_id, address, mutes, now + FEED_TTL)
                self.changed = True
            else:
                feed.expires = now + FEED_TTL

    def expire(self, now: float) -> None:
        for key in [k for k, feed in self._feeds.items() if feed.expires < now]:
            logger.info("feed %08x to %s:%s expired", key[1], *key[0])
            del self._feeds[key]
            self.changed = True

    def feeds(self) -> Iterable[Feed]:
        return self._feeds.values()

    def send(self, feeds: Iterable[Feed], timestamp: int, payload: bytes) -> None:
        for feed in feeds:
            feed.sequence = (feed.sequence + 1) & 0xFFFF
            try:
                self._sock.sendto(
                    feed_packet(feed.feed_id, feed.sequence, timestamp, payload), feed.address
                )
                feed.sent += 1
            except OSError:  # a full buffer or an unreachable relay: that feed's tick is lost
                self.errors += 1
