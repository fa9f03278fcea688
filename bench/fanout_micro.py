"""What one outbound packet costs: the per-listener path against the one-pass fan-out (issue 14).

    taskset -c 1 .venv/bin/python -m bench.fanout_micro --listeners 100,1000,2000

Real pieces only below the wire: every listener is an `RtpWire` (aiortc's `RTCRtpSender`,
its header extensions, a pylibsrtp `Session` with its own AES-128-CM/HMAC-SHA1-80 key), its
asyncio datagram transport on 127.0.0.1, and receiver sockets that count what arrives. Only
the DTLS handshake is skipped: the wire reads the connected state, SRTP session and selected
ICE pair from the same attributes aiortc's `RTCDtlsTransport` has (`LoopbackDtls`).

For each listener count it times `--ticks` ticks of one encoded Opus packet sent to every
listener, in the mixer's chunks of `FANOUT_CHUNK`:

- `old`: `MixedAudioTrack.put` per listener, on the wire as it was (`LegacyWire.send`:
  patch, protect, asyncio's `sendto`);
- `new`: `outbound.fan_out` per chunk: with the native library built (`scripts/setup`),
  one call into C per chunk (`fastpath.py`: patch, protect in place, send);
- `python` (with `--paths`): `fan_out` without the native library (`LIVEAUDIO_FASTPATH=0`,
  no compiler): each wire protects in Python, then the datagrams go socket by socket;
- `new-no-mmsg` (with `--paths`): that Python path as on a libc without `sendmmsg`;

each in two socket layouts: `own` (every listener its own socket, as aioice sets peers up
today: `new` then sends one datagram per socket) and `shared` (all listeners on one socket,
as a single-port ICE would have them: `new` then sends each chunk with one `sendmmsg`).
Receivers are drained between ticks, outside the timing. Loopback makes the kernel deliver
each datagram inside the sender's system call, so the figures include the receive side's
kernel work, which a real NIC would not charge to the sender.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import av
import numpy as np
from aiortc import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpSender,
)
from aiortc.rtcdtlstransport import State as DtlsState
from pylibsrtp import Policy, Session

from rooms.media import fastpath, sendmmsg
from rooms.media.codec import FRAME_SAMPLES, new_opus_encoder, pcm_frame
from rooms.media.mixer import FANOUT_CHUNK
from rooms.media.outbound import (
    MAX_SOCKET_BACKLOG,
    SENDER_REPORT_EVERY,
    MixedAudioTrack,
    RtpWire,
    fan_out,
    ntp_now,
)
from rooms.media.patches import SenderInternals

OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(
        id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    ),
]
SRTP_PROFILE = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
SRTP_KEY_BYTES = 30  # 16 bytes of key, 14 of salt
RECEIVER_BUFFER = 4 * 1024 * 1024


# -- one listener's wire, on loopback ------------------------------------------------------------


class _Protocol(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


@dataclass
class _Pair:  # aioice's CandidatePair, as RtpWire reads it
    protocol: _Protocol
    remote_addr: tuple[str, int]


@dataclass
class _Connection:  # aioice's Connection
    _nominated: dict[int, _Pair]


@dataclass
class _IceTransport:  # aiortc's RTCIceTransport
    _connection: _Connection


class LoopbackDtls:
    """What `RtpWire` reads of aiortc's `RTCDtlsTransport`, connected, with a real SRTP key."""

    state = "connected"

    def __init__(self, key: bytes, protocol: _Protocol, remote: tuple[str, int]) -> None:
        self._state = DtlsState.CONNECTED
        # aiortc's own transmit policy (RTCDtlsTransport._setup_srtp)
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=SRTP_PROFILE)
        policy.allow_repeat_tx = True
        policy.window_size = 1024
        self._tx_srtp = Session(policy)
        self.transport = _IceTransport(_Connection({1: _Pair(protocol, remote)}))


@dataclass
class Listener:
    track: MixedAudioTrack
    wire: RtpWire
    dtls: LoopbackDtls
    key: bytes
    transport: asyncio.DatagramTransport
    remote: tuple[str, int]


def receiving_session(key: bytes) -> Session:
    """The far end's SRTP session for a listener's `key` (to unprotect what it receives)."""
    return Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=SRTP_PROFILE))


async def loopback_endpoint() -> tuple[asyncio.DatagramTransport, _Protocol]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Protocol, local_addr=("127.0.0.1", 0)
    )
    return transport, protocol


def listener_on(
    transport: asyncio.DatagramTransport,
    protocol: _Protocol,
    remote: tuple[str, int],
    *,
    timestamp_origin: int,
    key: bytes | None = None,
    legacy: bool = False,
) -> Listener:
    """A started listener: a direct `MixedAudioTrack` bound to an `RtpWire` that sends from
    `transport` to `remote`. Call inside a running event loop (aiortc's sender wants one)."""
    key = os.urandom(SRTP_KEY_BYTES) if key is None else key
    dtls = LoopbackDtls(key, protocol, remote)
    sender = RTCRtpSender("audio", dtls)  # type: ignore[arg-type]
    sender._RTCRtpSender__mid = "0"  # type: ignore[attr-defined]
    extensions = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
    extensions.configure(RTCRtpParameters(headerExtensions=EXTENSIONS))
    kind = LegacyWire if legacy else RtpWire
    wire = kind(SenderInternals(sender), OPUS, timestamp_origin=timestamp_origin)
    track = MixedAudioTrack(timestamp_origin=timestamp_origin)
    track.bind(wire)
    return Listener(track, wire, dtls, key, transport, remote)


class Receivers:
    """Plain non-blocking sockets that count (and may keep) the datagrams they get."""

    def __init__(self, count: int) -> None:
        self.sockets = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVER_BUFFER)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.sockets.append(sock)
        self.addresses: list[tuple[str, int]] = [s.getsockname() for s in self.sockets]
        self.received = 0

    def drain(self, keep: list[bytes] | None = None) -> int:
        got = 0
        for sock in self.sockets:
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                got += 1
                if keep is not None:
                    keep.append(data)
        self.received += got
        return got

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def opus_packet() -> av.Packet:
    """One real 20 ms Opus packet of a 440 Hz tone."""
    encoder = new_opus_encoder()
    t = np.arange(FRAME_SAMPLES) / 48000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    packets: list[av.Packet] = []
    pts = 0
    while not packets:
        packets = list(encoder.encode(pcm_frame(pcm, pts)))
        pts += FRAME_SAMPLES
    return packets[0]


class LegacyWire(RtpWire):
    """`RtpWire.send` as it was before `fan_out` (commit 8b24a4b), verbatim but for names
    bound here (and its counters, private since the native path), so `old` measures the
    code the server ran, not today's single-packet path."""

    def send(self, payload: bytes, timestamp: int) -> bool:
        dtls = self._dtls
        if dtls._state is not DtlsState.CONNECTED:
            self._dropped += 1
            return False
        pair = dtls.transport._connection._nominated.get(1)
        if pair is not self._pair:
            self._use_pair(pair)
        transport, backlog = self._transport, self._backlog
        if transport is None or (backlog is not None and backlog() > MAX_SOCKET_BACKLOG):
            self._dropped += 1
            return False
        ntp = ntp_now()
        header = self._header
        frames = 1
        last, self._last_timestamp = self._last_timestamp, timestamp
        if last is not None and timestamp - last > FRAME_SAMPLES:
            frames = (timestamp - last) // FRAME_SAMPLES
        self._sequence = sequence = (self._sequence + frames) & 0xFFFF
        header[2:4] = sequence.to_bytes(2, "big")
        timestamp = (timestamp + self._timestamp_origin) & 0xFFFFFFFF
        header[4:8] = timestamp.to_bytes(4, "big")
        if self._abs_at is not None:
            header[self._abs_at : self._abs_at + 3] = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")
        if self._srtp is None:
            self._srtp = dtls._tx_srtp
        transport.sendto(self._srtp.protect(bytes(header) + payload), self._address)
        self._sent += 1
        self._octets += len(payload)
        if self._sent % SENDER_REPORT_EVERY == 1:
            self._report_to_sender(ntp, timestamp)
        return True


# -- the measurement -----------------------------------------------------------------------------

Sender = Callable[[Sequence[MixedAudioTrack], av.Packet, float, bytes], None]


def send_old(
    tracks: Sequence[MixedAudioTrack], packet: av.Packet, arrival: float, payload: bytes
) -> None:
    for track in tracks:
        track.put(packet, arrival, payload)


def send_new(
    tracks: Sequence[MixedAudioTrack], packet: av.Packet, arrival: float, payload: bytes
) -> None:
    fan_out(tracks, packet, arrival, payload)


def send_python(
    tracks: Sequence[MixedAudioTrack], packet: av.Packet, arrival: float, payload: bytes
) -> None:
    """`fan_out` without the native library: every wire takes the Python path."""
    real, fastpath._native = fastpath._native, None
    try:
        fan_out(tracks, packet, arrival, payload)
    finally:
        fastpath._native = real


def send_new_without_sendmmsg(
    tracks: Sequence[MixedAudioTrack], packet: av.Packet, arrival: float, payload: bytes
) -> None:
    """The Python path as on a libc without sendmmsg: a shared socket's datagrams go one
    by one."""
    real, sendmmsg._sendmmsg = sendmmsg._sendmmsg, None
    try:
        send_python(tracks, packet, arrival, payload)
    finally:
        sendmmsg._sendmmsg = real


PATHS: dict[str, Sender] = {
    "old": send_old,
    "new": send_new,
    "python": send_python,
    "new-no-mmsg": send_new_without_sendmmsg,
}


@dataclass
class Result:
    path: str
    layout: str
    listeners: int
    packets: int
    wall_seconds: float
    cpu_seconds: float
    received: int

    @property
    def us_per_packet(self) -> float:
        return self.cpu_seconds / self.packets * 1e6

    def line(self) -> str:
        wall = self.wall_seconds / self.packets * 1e6
        return (
            f"{self.path:>11} {self.layout:>6} {self.listeners:>5} listeners: "
            f"{self.us_per_packet:6.2f} us/packet CPU ({wall:6.2f} wall), "
            f"{1e6 / self.us_per_packet:9,.0f} packets/s per core, "
            f"received {self.received}/{self.packets}"
        )


async def build_listeners(
    count: int, layout: str, receivers: Receivers, origin: int, *, legacy: bool
) -> tuple[list[Listener], list[asyncio.DatagramTransport]]:
    transports: list[asyncio.DatagramTransport] = []
    listeners: list[Listener] = []
    shared = await loopback_endpoint() if layout == "shared" else None
    if shared is not None:
        transports.append(shared[0])
    for i in range(count):
        transport, protocol = shared if shared is not None else await loopback_endpoint()
        if shared is None:
            transports.append(transport)
        remote = receivers.addresses[i % len(receivers.addresses)]
        listeners.append(
            listener_on(transport, protocol, remote, timestamp_origin=origin, legacy=legacy)
        )
    return listeners, transports


async def measure(path: str, layout: str, count: int, ticks: int, packet: av.Packet) -> Result:
    receivers = Receivers(max(1, count // 250))
    listeners, transports = await build_listeners(
        count, layout, receivers, origin=12345, legacy=path == "old"
    )
    tracks = [listener.track for listener in listeners]
    chunks = [tracks[i : i + FANOUT_CHUNK] for i in range(0, count, FANOUT_CHUNK)]
    payload = bytes(packet)
    send = PATHS[path]
    wall = cpu = 0.0
    try:
        for tick in range(ticks + 1):
            packet.pts = (tick + 1) * FRAME_SAMPLES
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            for chunk in chunks:
                send(chunk, packet, time.monotonic(), payload)
            if tick:  # the first tick warms up: pair lookups, sockaddrs, sender reports
                wall += time.perf_counter() - started_wall
                cpu += time.process_time() - started_cpu
            receivers.drain()
            if not tick:
                receivers.received = 0
        receivers.drain()
    finally:
        for transport in transports:
            transport.close()
        receivers.close()
    return Result(path, layout, count, count * ticks, wall, cpu, receivers.received)


async def run(
    counts: list[int], ticks: int, layouts: list[str], paths: list[str], repeat: int
) -> list[Result]:
    packet = opus_packet()
    results = []
    for count in counts:
        for layout in layouts:
            for _ in range(repeat):
                for path in paths:
                    result = await measure(path, layout, count, ticks, packet)
                    print(result.line(), flush=True)
                    results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", default="100,1000,2000", help="comma-separated counts")
    parser.add_argument("--ticks", type=int, default=50, help="20 ms ticks timed per run")
    parser.add_argument("--layouts", default="own,shared", help="own, shared or both")
    parser.add_argument("--paths", default="old,new", help=f"any of {', '.join(PATHS)}")
    parser.add_argument("--repeat", type=int, default=1, help="old/new pairs per setting")
    args = parser.parse_args()
    counts = [int(c) for c in args.listeners.split(",")]
    layouts, paths = args.layouts.split(","), args.paths.split(",")
    native = "built" if fastpath.available() else "not built (or LIVEAUDIO_FASTPATH=0)"
    print(f"affinity: CPUs {sorted(os.sched_getaffinity(0))}; {args.ticks} ticks per run")
    print(f"native fan-out: {native}")
    asyncio.run(run(counts, args.ticks, layouts, paths, args.repeat))


if __name__ == "__main__":
    main()
