"""The per-participant outbound track: pre-encoded Opus packets from the mixer.

Two ways out, one track:

- **Direct (the normal case).** When aiortc starts the participant's
  RTCRtpSender, `use_direct_send` puts an `RtpWire` in place of the sender's
  per-packet loop: from then on `MixedAudioTrack.put()` (and `fan_out`, below) writes
  the RTP packet straight to the socket, inside the mixer's tick. aiortc's own loop costs a
  coroutine hop per layer per packet (track, sender, DTLS, ICE, protocol) —
  about 65 µs of Python per packet per listener, measured, which made one core
  carry only ~150 listeners. The wire does the same work (RTP header with
  aiortc's negotiated mid and abs-send-time extensions, SRTP, `sendto`) in a few
  synchronous steps, and keeps the sender's counters so its RTCP sender reports
  stay right.
- **Native (the fan-out's normal case).** `fan_out` sends a mix to up to `FANOUT_CHUNK`
  listeners in one call into C (`fastpath.py`): each ready wire has a slot there, and the
  C loop patches, protects in place and sends for all of them. A wire checks what
  `protect_next` checks (connected, its pair, its socket, nothing queued by asyncio) when
  it takes its slot and again every `SLOT_CHECK_EVERY` packets, not per packet; a packet
  the kernel does not take at once is lost, as below.
- **Batched in Python (without the native library, and for wires it cannot take: a TURN
  relay's).** Each wire patches and protects its packet, then
  the datagrams go out socket by socket, several from one socket in one `sendmmsg`
  (`sendmmsg.py`), a lone one with a plain `sendto` on the socket under asyncio's
  transport (its private `_sock`, Python 3.11's selector transport), skipping the
  transport's own per-call checks. aioice gives every peer a socket of its own, so
  today nearly every group holds one datagram: the gain is Python layers, not
  system calls (docs/performance.md, "Fan-out in one pass").
- **Queued (before the sender starts, and for tests that read the track).**
  `recv()` hands out the queued `av.Packet`s; aiortc's sender checks what it
  gets: an `av.Packet` is only packetised, never re-encoded.

Either way the same encoded packet goes to every listener of a mix, and nothing
waits on a slow peer: the queue is bounded and drops its oldest packet, and the
wire drops a packet when the socket's own send buffer is already backed up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast

import av
import pylibsrtp
from aiortc import RTCRtpCodecParameters, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    AnyRtcpPacket,
    HeaderExtensions,
    RtcpByePacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)
from aiortc.utils import random16, random32

from . import fastpath, sendmmsg
from .codec import FRAME_SAMPLES
from .patches import SenderInternals

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED = 5  # 100 ms: a stuck peer loses old audio instead of lagging
MAX_SOCKET_BACKLOG = 16 * 1024  # bytes asyncio may hold for one peer's socket
SENDER_REPORT_EVERY = 10  # packets between updates of the counters RTCP reports read
# Between RTCP sender reports, on average (each interval drawn from 0.5-1.5 times it, as RFC
# 3550 asks). aiortc sends one a second per sender: at 300 listeners that was a tenth of the
# media worker. 5 s is RFC 3550's minimum and what browsers use for audio.
SENDER_REPORT_SECONDS = 5.0
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
# Packets a wire sends through its native slot between two looks at its DTLS state, ICE
# pair and socket (0.5 s): a change takes effect within that, and the slot's duplicate
# descriptor keeps any packet in between going to the old socket, never to another one.
SLOT_CHECK_EVERY = 25


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp (what RTCP and abs-send-time use)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * (1 << 32))


class PacketStamp:
    """The times one mix packet carries to every listener, as header bytes computed once.

    Every listener of a room shares its RTP origin (`RoomMixer.rtp_origin`), so the RTP
    timestamp's bytes are the same for all of them; the abs-send-time is read once per
    `fan_out` call.
    """

    __slots__ = ("timestamp", "ntp", "abs_send_time", "origin", "rtp_timestamp", "rtp_bytes")

    def __init__(self, timestamp: int, ntp: int) -> None:
        self.timestamp = timestamp  # the mixer's pts, before the origin is added
        self.ntp = ntp
        self.abs_send_time = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
        self.origin: int | None = None
        self.rtp_timestamp = 0
        self.rtp_bytes = b""

    def set_origin(self, origin: int) -> None:
        self.origin = origin
        self.rtp_timestamp = (self.timestamp + origin) & 0xFFFFFFFF
        self.rtp_bytes = self.rtp_timestamp.to_bytes(4, "big")


class RtpWire:
    """One started sender's way to the network, without aiortc's per-packet loop.

    The RTP header is built once from aiortc's own serializer and then only
    patched per packet (sequence number, timestamp, abs-send-time), so the
    header extensions are exactly what the browser negotiated.
    """

    def __init__(
        self, sender: SenderInternals, codec: RTCRtpCodecParameters, *, timestamp_origin: int
    ) -> None:
        self._sender = sender
        self._dtls = sender.sender.transport
        self._srtp: Any = None
        extensions = sender.header_extensions_map
        assert codec.payloadType is not None  # negotiated: aiortc starts senders with one
        template = RtpPacket(payload_type=codec.payloadType, marker=1, ssrc=sender.sender._ssrc)
        template.extensions = HeaderExtensions(mid=sender.mid, abs_send_time=0)
        low = template.serialize(extensions)
        template.extensions.abs_send_time = 0xFFFFFF
        high = template.serialize(extensions)
        changed = [i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b]
        self._abs_at = changed[0] if changed else None  # None: not negotiated
        self._header = bytearray(low)
        self._sequence = random16()
        self._timestamp_origin = timestamp_origin  # the room's: see RoomMixer.rtp_origin
        self._last_timestamp: int | None = None
        self._pair: Any = None
        self._transport: Any = None
        self._address: Any = None
        self._backlog: Callable[[], int] | None = None
        self._socket: socket.socket | None = None  # for `fan_out`'s direct writes
        self._sockaddr: sendmmsg.SockAddr | None = None
        self.clear_to_send = False  # set by protect_next: asyncio holds nothing for the socket
        self._octets = 0
        self._sent = 0
        self._dropped = 0
        # The native fan-out's slot (`fastpath.Table`), while armed: -1 when none.
        self._table: fastpath.Table | None = None
        self._slot = -1
        self._slot_for: tuple[Any, Any] | None = None  # the (pair, SRTP session) it sends with
        self.slot_left = 0  # packets the slot may send before the next look (fan_out's)

    @property
    def sent(self) -> int:
        """Packets sent, in Python and through the native slot."""
        return self._sent + (self._slot_state().sent if self._slot >= 0 else 0)

    @property
    def dropped(self) -> int:
        return self._dropped + (self._slot_state().dropped if self._slot >= 0 else 0)

    def send(self, payload: bytes, timestamp: int) -> bool:
        """Send one Opus payload; False (and counted) when it could not go out.

        The one-listener path (and the batch's fallback): `fan_out` sends a mix to many.
        """
        datagram = self.protect_next(payload, PacketStamp(timestamp, ntp_now()))
        if datagram is None:
            return False
        self._transport.sendto(datagram, self._address)
        return True

    def protect_next(self, payload: bytes, stamp: PacketStamp) -> bytes | None:
        """The next SRTP packet of this sender, counted as sent; None (and counted) when it
        must not go out: not connected, no pair, or the socket's backlog is over the limit.

        This runs once per listener per 20 ms, so it keeps to plain attribute reads: the
        selected ICE pair's socket is looked up again only when the pair changes.
        """
        if self._slot >= 0:
            self.release_slot()  # the sequence goes on here, from where the slot left it
        dtls = self._dtls
        if dtls._state is not DtlsState.CONNECTED:
            self._dropped += 1
            return None
        pair = dtls.transport._connection._nominated.get(1)
        if pair is not self._pair:
            self._use_pair(pair)
        transport, backlog = self._transport, self._backlog
        held = backlog() if backlog is not None else 0
        if transport is None or held > MAX_SOCKET_BACKLOG or transport.is_closing():
            # Gone, or the kernel is not taking our packets: never queue. (A closed
            # asyncio datagram transport raises on sendto instead of dropping.)
            self._dropped += 1
            return None
        # Only a socket asyncio holds nothing for may be written to directly: anything
        # else would overtake the packets it has queued.
        self.clear_to_send = held == 0 and backlog is not None
        header = self._header
        # One packet a frame: frames not sent (skipped by a late mixer, or dropped here)
        # take their sequence numbers with them, so the listener counts them lost.
        frames = 1
        timestamp = stamp.timestamp
        last, self._last_timestamp = self._last_timestamp, timestamp
        if last is not None and timestamp - last > FRAME_SAMPLES:
            frames = (timestamp - last) // FRAME_SAMPLES
        self._sequence = sequence = (self._sequence + frames) & 0xFFFF
        header[2:4] = sequence.to_bytes(2, "big")
        if stamp.origin != self._timestamp_origin:
            stamp.set_origin(self._timestamp_origin)
        header[4:8] = stamp.rtp_bytes
        if self._abs_at is not None:
            header[self._abs_at : self._abs_at + 3] = stamp.abs_send_time
        if self._srtp is None:
            self._srtp = dtls._tx_srtp
        try:
            datagram: bytes = self._srtp.protect(bytes(header) + payload)
        except pylibsrtp.Error:
            # libsrtp refuses an index it takes for a replay: this listener's packet is
            # lost, not the rest of the fan-out.
            self._dropped += 1
            return None
        self._sent += 1
        self._octets += len(payload)
        if self._sent % SENDER_REPORT_EVERY == 1:
            self._report_to_sender(stamp.ntp, stamp.rtp_timestamp)
        return datagram

    def take_slot(self, table: fastpath.Table) -> int:
        """The native slot this wire's next `SLOT_CHECK_EVERY` packets may go through, armed
        (again) if need be; -1 (and no slot) when only `protect_next` may send: not
        connected, no pair, no socket of its own (a TURN relay's), or asyncio holds packets
        for it (the Python path sends behind them)."""
        dtls = self._dtls
        pair = dtls.transport._connection._nominated.get(1)
        if pair is not self._pair:
            self._use_pair(pair)
        transport, backlog = self._transport, self._backlog
        srtp = dtls._tx_srtp
        if (
            dtls._state is not DtlsState.CONNECTED
            or transport is None
            or self._socket is None
            or self._sockaddr is None
            or srtp is None
            or backlog is None
            or backlog() != 0
            or transport.is_closing()
        ):
            if self._slot >= 0:
                self.release_slot()
            return -1
        if self._slot < 0 or self._table is not table or self._slot_for != (pair, srtp):
            if self._slot >= 0:
                self.release_slot()
            self._arm(table, srtp)
        self.slot_left = SLOT_CHECK_EVERY - 1 if self._slot >= 0 else 0
        return self._slot

    def _arm(self, table: fastpath.Table, srtp: Any) -> None:
        assert self._socket is not None and self._sockaddr is not None
        self._srtp = srtp
        self._slot = table.arm(
            session=srtp,
            fd=self._socket.fileno(),
            header=bytes(self._header),
            abs_at=self._abs_at,
            address=self._sockaddr,
            sequence=self._sequence,
            last_pts=self._last_timestamp,
            origin=self._timestamp_origin,
        )
        if self._slot >= 0:
            self._table = table
            self._slot_for = (self._pair, srtp)

    def _slot_state(self) -> fastpath.SlotState:
        assert self._table is not None
        return self._table.read(self._slot)

    def release_slot(self) -> None:
        """Stop sending through the native slot; its sequence and counters come back here."""
        if self._slot < 0 or self._table is None:
            return
        state = self._table.release(self._slot)
        self._slot, self._table, self._slot_for, self.slot_left = -1, None, None, 0
        self._sequence = state.sequence
        self._last_timestamp = state.last_pts
        self._sent += state.sent
        self._dropped += state.dropped
        self._octets += state.octets
        if state.sent:
            self._report_to_sender(state.last_ntp, state.last_rtp)

    def sync_report(self) -> None:
        """Bring what RTCP sender reports read up to date with the native slot's sends (the
        Python path records them as it goes)."""
        if self._slot < 0:
            return
        state = self._slot_state()
        if state.sent:
            self._sender.record_sent(
                ntp=state.last_ntp,
                rtp_timestamp=state.last_rtp,
                octets=self._octets + state.octets,
                packets=self._sent + state.sent,
            )

    def _use_pair(self, pair: Any) -> None:
        self._pair = pair
        transport = getattr(pair.protocol, "transport", None) if pair is not None else None
        self._transport = transport
        self._address = pair.remote_addr if pair is not None else None
        # asyncio's transports say how much they hold back; a TURN relay's does not.
        self._backlog = getattr(transport, "get_write_buffer_size", None)
        # The socket under asyncio's selector transport (private: `_sock`), written to
        # directly while the transport holds nothing back; a TURN relay's has none.
        sock = getattr(transport, "_sock", None)
        self._socket = sock if isinstance(sock, socket.socket) else None
        self._sockaddr = sendmmsg.sockaddr_for(self._address) if self._socket else None

    def _report_to_sender(self, ntp: int, timestamp: int) -> None:
        """What aiortc's RTCP sender reports read: a matching (NTP, RTP) time and counts."""
        self._sender.record_sent(
            ntp=ntp, rtp_timestamp=timestamp, octets=self._octets, packets=self._sent
        )


def use_direct_send(sender: RTCRtpSender, track: MixedAudioTrack) -> None:
    """Make `sender`, once aiortc starts it, hand `track` an `RtpWire`.

    Call right after `addTrack`: it replaces the sender's RTP and RTCP loops, which
    aiortc's `send()` starts (`patches.SenderInternals`).
    """
    internals = SenderInternals(sender)

    async def run_rtp(codec: RTCRtpCodecParameters) -> None:
        internals.rtp_started()
        try:
            wire = RtpWire(internals, codec, timestamp_origin=track.timestamp_origin)
            track.bind(wire)
            await track.wait_ended()
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("direct RTP sender failed")
        finally:
            track.unbind()
            with contextlib.suppress(Exception):
                track.stop()
            internals.rtp_exited()  # RTCRtpSender.stop() waits on it

    async def run_rtcp() -> None:
        internals.rtcp_started()
        try:
            while True:
                await asyncio.sleep(SENDER_REPORT_SECONDS * (0.5 + random.random()))
                wire = track._wire
                if wire is not None:
                    wire.sync_report()
                await sender._send_rtcp(sender_report(internals))
        except asyncio.CancelledError:
            pass
        with contextlib.suppress(Exception):
            await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        internals.rtcp_exited()  # RTCRtpSender.stop() waits on it

    internals.replace_loops(run_rtp=run_rtp, run_rtcp=run_rtcp)


def sender_report(internals: SenderInternals) -> list[AnyRtcpPacket]:
    """aiortc's sender report (SR, and SDES with the CNAME) from the sender's counters,
    which `RtpWire` keeps; remembered as aiortc does, for its round-trip estimate."""
    ntp, rtp_timestamp, packet_count, octet_count = internals.sent()
    info = RtcpSenderInfo(
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=packet_count & 0xFFFFFFFF,
        octet_count=octet_count & 0xFFFFFFFF,
    )
    ssrc = internals.sender._ssrc
    packets: list[AnyRtcpPacket] = [RtcpSrPacket(ssrc=ssrc, sender_info=info)]
    internals.remember_report(ntp=ntp, at=time.time())
    cname = internals.cname
    if cname is not None:
        source = RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode("utf8"))])
        packets.append(RtcpSdesPacket(chunks=[source]))
    return packets


class MixedAudioTrack(MediaStreamTrack):
    """Carries a listener's mix: straight to its wire, or queued for `recv()`.

    The queue is bounded and drops its oldest packet, so a slow peer only hurts
    itself: the mixer never waits for anyone.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        on_sent: Callable[[float], None] | None = None,
        timestamp_origin: int | None = None,
    ) -> None:
        super().__init__()
        # Added to every packet's pts on the wire; random (as aiortc's own) unless the mixer
        # gives its room's, which every listener shares.
        self.timestamp_origin = random32() if timestamp_origin is None else timestamp_origin
        self._queue: deque[tuple[av.Packet, float | None]] = deque()
        self._max_queued = max_queued
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._on_sent = on_sent
        self._wire: RtpWire | None = None
        self.queued = 0
        self.sent = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Packets queued and not yet taken by the sender."""
        return len(self._queue)

    @property
    def direct(self) -> bool:
        """Whether packets go straight to the network (the sender has started)."""
        return self._wire is not None

    def bind(self, wire: RtpWire) -> None:
        """From now on send through `wire`; what was queued is stale audio."""
        self._wire = wire
        self._queue.clear()

    def unbind(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.release_slot()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def put(
        self, packet: av.Packet, arrival: float | None = None, payload: bytes | None = None
    ) -> None:
        """Send or queue a packet; `arrival` is when its oldest source audio reached us.

        `payload` is `bytes(packet)`, which the mixer computes once for all listeners.
        """
        if self.readyState != "live":
            return
        self.queued += 1
        wire = self._wire
        if wire is None:
            if len(self._queue) >= self._max_queued:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((packet, arrival))
            self._ready.set()
            return
        timestamp = cast(int, packet.pts)  # the mixer stamps every packet it encodes
        if not wire.send(bytes(packet) if payload is None else payload, timestamp):
            self.dropped += 1
            return
        self.sent += 1
        if arrival is not None and self._on_sent is not None:
            self._on_sent(time.monotonic() - arrival)

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        packet, arrival = self._queue.popleft()
        self.sent += 1
        if arrival is not None and self._on_sent is not None:
            self._on_sent(time.monotonic() - arrival)
        return packet

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self.unbind()
        self._ready.set()  # wake a pending recv() so the sender loop can exit
        self._ended.set()


def take_track(
    tracks: dict[str, MixedAudioTrack],
    pid: str,
    track: MixedAudioTrack | None,
    new_track: Callable[[], MixedAudioTrack],
) -> MixedAudioTrack:
    """A participant's track in `tracks` (a mixer's or a relay room's): with `track`, that one
    takes over from any it had (which ends); without, the current one is kept or a new made."""
    current = tracks.get(pid)
    if track is None:
        if current is not None:
            return current
        track = new_track()
    elif current is not None and current is not track:
        current.stop()
    tracks[pid] = track
    return track


def fan_out(
    tracks: Iterable[MixedAudioTrack],
    packet: av.Packet,
    arrival: float | None = None,
    payload: bytes | None = None,
) -> None:
    """`track.put(packet, arrival, payload)` for every track, in one pass.

    Direct tracks whose wire has a native slot go out in one call into C (`fastpath`);
    the others' wires patch their header and protect the packet, and the datagrams are
    then written socket by socket (`_send_datagrams`). The backlog rule is each wire's, as
    in `RtpWire.send`. The abs-send-time is read once per call, not per listener: the mixer
    calls this for at most `FANOUT_CHUNK` listeners at a time.
    """
    if payload is None:
        payload = bytes(packet)
    stamp = PacketStamp(cast(int, packet.pts), ntp_now())  # the mixer stamps every packet
    table = fastpath.table()
    outgoing: list[tuple[RtpWire, bytes]] = []
    delivered: list[MixedAudioTrack] = []
    slots: list[int] = []
    slotted: list[MixedAudioTrack] = []
    for track in tracks:
        wire = track._wire
        if wire is None or track.readyState != "live":
            track.put(packet, arrival, payload)  # queued, or ended: its own rules
            continue
        track.queued += 1
        if table is not None:
            if wire.slot_left:
                wire.slot_left -= 1
                slots.append(wire._slot)
                slotted.append(track)
                continue
            slot = wire.take_slot(table)
            if slot >= 0:
                slots.append(slot)
                slotted.append(track)
                continue
        datagram = wire.protect_next(payload, stamp)
        if datagram is None:
            track.dropped += 1
            continue
        outgoing.append((wire, datagram))
        track.sent += 1
        delivered.append(track)
    _send_datagrams(outgoing)
    if slots:
        assert table is not None
        outcomes = table.send(slots, payload, stamp.timestamp, stamp.ntp)
        for track, outcome in zip(slotted, outcomes, strict=True):
            if outcome == fastpath.SENT:
                track.sent += 1
                delivered.append(track)
            else:
                track.dropped += 1
    if arrival is not None:
        latency = time.monotonic() - arrival
        for track in delivered:
            if track._on_sent is not None:
                track._on_sent(latency)


def _send_datagrams(outgoing: list[tuple[RtpWire, bytes]]) -> None:
    """Write each wire's datagram; several from one socket in one `sendmmsg`.

    A lone datagram goes with a plain `sendto` on the socket itself, not through asyncio's
    transport and its checks; a socket asyncio already holds packets for gets the new
    ones through the transport too, behind them. aioice gives every peer a socket of its
    own, so the common case is the first loop: all sockets distinct.
    """
    if len({wire._transport for wire, _ in outgoing}) == len(outgoing):
        for wire, datagram in outgoing:
            sock = wire._socket
            if sock is not None and wire.clear_to_send:
                try:
                    sock.sendto(datagram, wire._address)
                    continue
                except OSError:  # full (EAGAIN) or refused: asyncio's own handling
                    pass
            wire._transport.sendto(datagram, wire._address)
        return
    groups: dict[Any, tuple[list[bytes], list[RtpWire]]] = {}
    for wire, datagram in outgoing:
        group = groups.get(wire._transport)
        if group is None:
            groups[wire._transport] = ([datagram], [wire])
        else:
            group[0].append(datagram)
            group[1].append(wire)
    for transport, (datagrams, wires) in groups.items():
        first = wires[0]  # one transport, one backlog: the same for all its wires
        if first._socket is None or not first.clear_to_send:
            _through_transport(transport, datagrams, wires, 0)
        else:
            _send_many(transport, first._socket, datagrams, wires)


def _send_many(
    transport: Any, sock: socket.socket, datagrams: list[bytes], wires: list[RtpWire]
) -> None:
    """Several datagrams from one socket: `sendmmsg`, the rest (if the kernel stopped
    taking them) through the transport, which queues them as it would its own."""
    batch = _datagram_batch()
    addresses = [wire._sockaddr for wire in wires]
    if batch is None or None in addresses:
        _through_transport(transport, datagrams, wires, 0)
        return
    try:
        sent = batch.send(sock.fileno(), datagrams, cast(list[sendmmsg.SockAddr], addresses))
    except OSError:
        sent = 0
    if sent < len(datagrams):
        _through_transport(transport, datagrams, wires, sent)


def _through_transport(
    transport: Any, datagrams: list[bytes], wires: list[RtpWire], start: int
) -> None:
    for datagram, wire in zip(datagrams[start:], wires[start:], strict=True):
        transport.sendto(datagram, wire._address)


_local = threading.local()


def _datagram_batch() -> sendmmsg.DatagramBatch | None:
    """This thread's `sendmmsg` arrays (each media loop has its own); None without it."""
    if not sendmmsg.available():
        return None
    batch = getattr(_local, "batch", None)
    if batch is None:
        batch = _local.batch = sendmmsg.DatagramBatch()
    return batch
