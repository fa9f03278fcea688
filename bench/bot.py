"""A Python participant: sends a sine tone over WebRTC, analyses what it hears.

    .venv/bin/python -m bench.bot --server http://127.0.0.1:8100 --room demo \
        --user bot1 --seat 1 --tone 440 --seconds 10

Two ways in:
- `connect_in_process(bot, media_peer)`: offer/answer handed over directly
  (tests, benchmarks, one event loop);
- `join_over_websocket(bot, url, ...)`: the room's socket protocol, for a bot
  joining a running server. Kept separate so the signalling can change
  without touching the media side.

What it hears is counted packet by packet in a tap that stands in for aiortc's
jitter buffer (as rooms/media/receiver_tap.py does on the server): packets, and
loss from the RTP timestamps (the server stamps every mix on one 20 ms clock, so
a gap is a packet lost on the wire *or* dropped by the server). A cheap bot
(`decode=False`) stops there; a full bot also hands the packets on to aiortc's
decoder for `hears()`. Tone bursts give end-to-end latency: a speaker with
`bursts=True` plays its tone only in the first 200 ms of every second of the
machine's monotonic clock, which all processes share, so a listener that sees a
burst begin at monotonic time t heard it t - floor(t) after it was captured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import itertools
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import av
import numpy as np
from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from rooms.media.codec import decode_pcm, new_opus_decoder
from rooms.media.ice import rtc_configuration
from rooms.media.patches import (
    install_consent_leak_fix,
    install_datagram_drain,
    jitter_buffer,
    replace_jitter_buffer,
    restrict_host_candidates_to_loopback,
)
from rooms.media.playout import TimestampUnwrapper

if TYPE_CHECKING:
    from rooms.media.peer import MediaPeer

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
FRAMES_PER_SECOND = round(1 / FRAME_SECONDS)
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
BURST_FRAMES = 10  # 200 ms of tone at the start of every second, then silence
DEFAULT_APP_ID = 1234567

logger = logging.getLogger(__name__)


class ToneTrack(MediaStreamTrack):
    """20 ms s16 mono 48 kHz frames of a sine tone, paced by wall-clock deadlines."""

    kind = "audio"

    def __init__(
        self, frequency: float | None, amplitude: int = 6000, *, bursts: bool = False
    ) -> None:
        super().__init__()
        self.frequency = frequency  # None or 0: silence (a listener's muted mic)
        self.amplitude = amplitude
        self.bursts = bursts
        self._samples_sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        deadline = await self._wait_for_deadline()
        pcm = self._next_pcm(deadline)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples_sent
        frame.time_base = TIME_BASE
        self._samples_sent += FRAME_SAMPLES
        return frame

    async def _wait_for_deadline(self) -> float:
        now = time.monotonic()
        if self._start is None:
            # On the 20 ms grid of the monotonic clock, so bursts start on whole seconds.
            self._start = math.ceil(now * FRAMES_PER_SECOND) / FRAMES_PER_SECOND
        deadline = self._start + self._samples_sent / SAMPLE_RATE
        if deadline > now:
            await asyncio.sleep(deadline - now)
        return deadline

    def _next_pcm(self, deadline: float) -> np.ndarray:
        if not self.frequency or (self.bursts and not in_burst(deadline)):
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        n = np.arange(self._samples_sent, self._samples_sent + FRAME_SAMPLES)
        wave = self.amplitude * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)
        return wave.astype(np.int16)


def in_burst(deadline: float) -> bool:
    return round(deadline * FRAMES_PER_SECOND) % FRAMES_PER_SECOND < BURST_FRAMES


@dataclass
class ReceiveStats:
    packets_received: int
    packets_lost: int
    frames_decoded: int

    @property
    def loss(self) -> float:
        expected = self.packets_received + self.packets_lost
        return self.packets_lost / expected if expected else 0.0


class BurstProbe:
    """Decodes every packet and notes when a tone burst begins, per frequency."""

    def __init__(self, frequencies: Sequence[float], threshold: float = 1500.0) -> None:
        self.threshold = threshold
        self.latencies: dict[float, list[float]] = {f: [] for f in frequencies}
        self._decoder = new_opus_decoder()
        window = np.hanning(FRAME_SAMPLES)
        n = np.arange(FRAME_SAMPLES)
        # One windowed DFT bin per frequency: a 20 ms frame is enough to tell tones apart.
        self._basis = {
            f: window * np.exp(-2j * np.pi * f * n / SAMPLE_RATE) * 2 / window.sum()
            for f in frequencies
        }
        self._quiet_frames = dict.fromkeys(frequencies, 0)

    def feed(self, payload: bytes, arrival: float) -> None:
        pcm = decode_pcm(self._decoder, payload)
        if pcm is None or pcm.size < FRAME_SAMPLES:
            return
        audio = pcm[:FRAME_SAMPLES].astype(np.float32)
        for f, basis in self._basis.items():
            if abs(np.dot(audio, basis)) < self.threshold:
                self._quiet_frames[f] += 1
                continue
            if self._quiet_frames[f] >= FRAMES_PER_SECOND // 2:
                self.latencies[f].append(arrival - math.floor(arrival))
            self._quiet_frames[f] = 0


class PacketTap:
    """Stands in for aiortc's JitterBuffer: counts what arrives, then passes it on or not."""

    def __init__(
        self, inner: Any, *, forward: bool, probe: BurstProbe | None = None, keep: int = 25
    ) -> None:
        self.inner = inner
        self.forward = forward
        self.probe = probe
        self.packets = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.first_arrival: float | None = None
        self.recent: deque[bytes] = deque(maxlen=keep)  # for a spot check of the audio
        self._unwrapper = TimestampUnwrapper()

    def add(self, packet: RtpPacket) -> tuple[bool, Any]:
        now = time.monotonic()
        self.count(packet.timestamp, now)
        if packet.payload:
            self.recent.append(packet.payload)
            if self.probe is not None:
                self.probe.feed(packet.payload, now)
        return self.inner.add(packet) if self.forward else (False, None)

    def count(self, timestamp: int, now: float) -> None:
        ts = self._unwrapper.unwrap(timestamp)
        if self.first_ts is None:
            self.first_ts, self.first_arrival = ts, now
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        self.packets += 1

    def header_received(self, data: bytes) -> None:
        """A thin bot's count: the RTP header, read in the clear from the SRTP packet."""
        self.count(int.from_bytes(data[4:8], "big"), time.monotonic())

    @property
    def expected(self) -> int:
        """Packets the server's clock produced since the first one we got."""
        if self.first_ts is None or self.last_ts is None:
            return 0
        return (self.last_ts - self.first_ts) // FRAME_SAMPLES + 1


class Bot:
    """One participant: a tone on its microphone, ears on what the server mixes.

    `send=False` offers recvonly, like a browser listener that has no microphone track;
    `decode=False` only counts packets (cheap enough for hundreds of listeners); `thin=True`
    (a listener: no sending, no decoding) does ICE and DTLS through aiortc, then takes the
    RTP packets off the socket itself and counts their headers, which SRTP leaves in the
    clear, without unprotecting them (for thousands of listeners a core: see `_go_thin`).
    """

    def __init__(
        self,
        name: str,
        frequency: float | None = None,
        *,
        ice_servers: Iterable[RTCIceServer] = (),
        memory_seconds: float = 2.0,
        send: bool = True,
        decode: bool = True,
        thin: bool = False,
        bursts: bool = False,
        probe_frequencies: Sequence[float] = (),
    ) -> None:
        if thin:
            send = decode = False
        install_consent_leak_fix()
        install_datagram_drain()
        self.name = name
        self.tone = ToneTrack(frequency, bursts=bursts)
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        if send:
            transceiver = self.pc.addTransceiver(self.tone, direction="sendrecv")
        else:
            transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        probe = BurstProbe(probe_frequencies) if probe_frequencies else None
        self.tap = _install_tap(transceiver.receiver, forward=decode, probe=probe)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.connected = asyncio.Event()
        self.connected_at: float | None = None
        self.frames_decoded = 0
        self._decode = decode
        self._thin = thin
        self._heard: deque[np.ndarray] = deque(maxlen=int(memory_seconds / FRAME_SECONDS))
        self._listener: asyncio.Task[None] | None = None

    async def create_offer(self) -> str:
        """Gather candidates and return the complete offer SDP (no trickle ICE)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        self.tone.stop()
        await self.pc.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self.connected.is_set():
            self.connected_at = time.monotonic()
            if self._thin:
                self._go_thin()
            self.connected.set()
        elif state == "failed":
            logger.warning("bot %s: connection failed", self.name)

    def _go_thin(self) -> None:
        """From now on RTP goes from the socket straight to the tap's count: not through
        aioice's STUN parse, the queue, SRTP and aiortc's receiver. STUN (consent checks),
        DTLS and RTCP still take aiortc's way (RFC 7983 tells them apart by the first byte;
        RFC 5761 RTCP from RTP by the second)."""
        [transceiver] = self.pc.getTransceivers()
        connection = transceiver.receiver.transport.transport._connection
        protocol = connection._nominated[1].protocol
        usual = protocol.datagram_received
        header_received = self.tap.header_received

        def datagram_received(data: bytes, addr: Any) -> None:
            if 128 <= data[0] <= 191 and not 192 <= data[1] <= 223 and len(data) >= 12:
                header_received(data)
            else:
                usual(data, addr)

        protocol.datagram_received = datagram_received

    # -- what it hears ---------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._decode and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(track), name=f"Bot({self.name}).listen"
            )

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self._heard.append(_first_channel(frame))
                self.frames_decoded += 1

    def recent_audio(self, seconds: float) -> np.ndarray:
        """The last `seconds` of decoded audio (int16 mono), possibly shorter."""
        frames = list(self._heard)[-max(1, round(seconds / FRAME_SECONDS)) :]
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(frames)

    def heard_seconds(self) -> float:
        """How much decoded audio is remembered (up to `memory_seconds`)."""
        return len(self._heard) * FRAME_SECONDS

    def tone_amplitudes(
        self, frequencies: Sequence[float], seconds: float = 0.5
    ) -> dict[float, float]:
        """Estimated peak amplitude (int16 units) of each frequency in recent audio."""
        return _amplitudes(self.recent_audio(seconds), frequencies, seconds)

    def hears(
        self, frequencies: Sequence[float], threshold: float = 600.0, seconds: float = 0.5
    ) -> set[float]:
        """Which of `frequencies` are present above `threshold` in recent audio."""
        amplitudes = self.tone_amplitudes(frequencies, seconds)
        return {f for f, a in amplitudes.items() if a >= threshold}

    def spot_check(self) -> np.ndarray:
        """Decode the last packets the tap kept (~0.5 s), even when the bot does not decode."""
        decoder = new_opus_decoder()
        chunks = [decode_pcm(decoder, payload) for payload in list(self.tap.recent)]
        chunks = [c for c in chunks if c is not None]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def dominant_frequency(self) -> float | None:
        """The loudest frequency in the last ~0.5 s, or None when it is silence."""
        audio = self.spot_check().astype(np.float32)
        if audio.size < FRAME_SAMPLES or np.abs(audio).max() < 300:
            return None
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
        return float(np.argmax(spectrum[1:]) + 1) * SAMPLE_RATE / audio.size

    def burst_latencies(self) -> dict[float, list[float]]:
        return self.tap.probe.latencies if self.tap.probe else {}

    async def receive_stats(self) -> ReceiveStats:
        """Packets counted by the tap; loss = gaps in the server's RTP timeline."""
        received = self.tap.packets
        return ReceiveStats(received, max(0, self.tap.expected - received), self.frames_decoded)


def _install_tap(receiver: Any, *, forward: bool, probe: BurstProbe | None) -> PacketTap:
    tap = PacketTap(jitter_buffer(receiver), forward=forward, probe=probe)
    replace_jitter_buffer(receiver, tap)
    return tap


def _amplitudes(audio: np.ndarray, frequencies: Sequence[float], seconds: float) -> dict:
    audio = audio.astype(np.float32)
    if audio.size < round(seconds * SAMPLE_RATE):
        # Too little audio to say anything: report nothing rather than guess.
        return dict.fromkeys(frequencies, 0.0)
    window = np.hanning(audio.size).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(audio * window)) * 2 / window.sum()
    hz_per_bin = SAMPLE_RATE / audio.size
    amplitudes = {}
    for f in frequencies:
        centre = int(round(f / hz_per_bin))
        amplitudes[f] = float(spectrum[max(0, centre - 2) : centre + 3].max())
    return amplitudes


def _first_channel(frame: av.AudioFrame) -> np.ndarray:
    """aiortc decodes to interleaved s16 stereo; keep the left channel."""
    samples = frame.to_ndarray().reshape(-1)
    channels = len(frame.layout.channels)
    return samples[::channels] if channels > 1 else samples


# -- signalling ------------------------------------------------------------------


async def connect_in_process(bot: Bot, peer: MediaPeer) -> None:
    """Offer/answer between a bot and a server-side MediaPeer in the same loop."""
    answer = await peer.accept_offer(await bot.create_offer())
    await bot.accept_answer(answer.sdp)


class RoomError(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class JsonChannel(Protocol):
    """The room socket as the bot needs it: a request/reply call."""

    async def request(self, action: str, **fields: Any) -> Any: ...


async def negotiate_over(
    channel: JsonChannel,
    bot: Bot,
    *,
    seat_index: int | None = None,
    mic_on: bool = True,
) -> None:
    """The room protocol: `rtc.offer` -> answer, then optionally a seat and the microphone."""
    answer = await channel.request("rtc.offer", sdp=await bot.create_offer())
    await bot.accept_answer(answer["sdp"])
    if seat_index is not None:
        await negotiate_seat(channel, seat_index, mic_on=mic_on)


class WebsocketChannel:
    """The room socket over `websockets`: replies matched by requestID, the rest drained.

    The server pushes HTML and state to every socket on every change; a reader task
    takes them off the socket at once so a busy room never backs up into the server.
    """

    def __init__(self, socket: Any, timeout: float = 20.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self.frames = 0
        self.closed_code: int | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str, origin: str | None = None) -> WebsocketChannel:
        import websockets  # only bots joining a live server need it

        headers = {"Origin": origin} if origin else None
        socket = await websockets.connect(
            url, additional_headers=headers, max_size=None, open_timeout=30, ping_interval=None
        )
        return cls(socket)

    async def request(self, action: str, **fields: Any) -> Any:
        """Send one action and return the `data` of its reply; raise RoomError if refused."""
        request_id = f"r{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.socket.send(
                json.dumps({"action": action, "requestID": request_id, **fields})
            )
            async with asyncio.timeout(self.timeout):
                message = await future
        finally:
            self._pending.pop(request_id, None)
        if message.get("type") == "error":
            raise RoomError(message.get("code", "error"), message.get("message", ""))
        return message.get("data")

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                self.frames += 1
                # Only replies and errors matter; state pushes (one per change, to every
                # socket) are not parsed, which keeps hundreds of bots cheap.
                if isinstance(text, str) and _is_reply_or_error(text[:64]):
                    self._dispatch(json.loads(text))
        except Exception:
            pass  # closed under us: pending requests fail below
        self.closed_code = getattr(self.socket, "close_code", None)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RoomError("closed", f"socket closed ({self.closed_code})"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        future = self._pending.get(message.get("requestID") or "")
        if future is not None and not future.done() and message.get("type") in ("reply", "error"):
            future.set_result(message)
        elif message.get("type") == "error" and not message.get("requestID"):
            # Refused at join (bad token, no such room): the server closes right after.
            for pending in self._pending.values():
                if not pending.done():
                    pending.set_result(message)

    async def close(self) -> None:
        await self.socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _is_reply_or_error(head: str) -> bool:
    return head.startswith("{") and ('"reply"' in head or '"error"' in head)


def room_url(server: str, app_id: int | str, room_id: str, token: str) -> str:
    host = server.split("://", 1)[-1].rstrip("/")
    return f"ws://{host}/ws/rooms/{app_id}/{room_id}/?token={token}"


def origin_of(server: str) -> str:
    return server.rstrip("/") if "://" in server else f"http://{server.rstrip('/')}"


@dataclass
class JoinTimes:
    answered: float  # socket connect -> SDP answer
    connected: float  # socket connect -> ICE + DTLS connected


async def join_over_websocket(
    bot: Bot,
    url: str,
    *,
    seat_index: int | None = None,
    origin: str | None = None,
    mic_on: bool = True,
    connect_timeout: float = 30.0,
) -> tuple[WebsocketChannel, JoinTimes]:
    """Join a running room; keep the returned channel open while the bot stays."""
    restrict_host_candidates_to_loopback()  # the bot's side, too, stays on 127.0.0.1
    started = time.monotonic()
    channel = await WebsocketChannel.connect(url, origin)
    try:
        await negotiate_over(channel, bot, seat_index=None)
        answered = time.monotonic() - started
        await asyncio.wait_for(bot.connected.wait(), connect_timeout)
        if seat_index is not None:
            await negotiate_seat(channel, seat_index, mic_on=mic_on)
    except BaseException:
        await channel.close()
        raise
    return channel, JoinTimes(answered, (bot.connected_at or time.monotonic()) - started)


async def negotiate_seat(channel: JsonChannel, seat_index: int, *, mic_on: bool = True) -> None:
    await channel.request("seat.take", index=seat_index)
    if mic_on:
        # Only a seated member with the microphone on is mixed into the room.
        await channel.request("microphone.turnOn", isOn=True)


# -- tokens (the bench plays the integrator's backend) -----------------------------


def mint_tokens(
    app_id: int, room_id: str, users: Sequence[tuple[str, str | None]], ttl_seconds: int = 6 * 3600
) -> list[str]:
    """Tokens for (user_id, role) pairs, signed with the app's appSign from the server's DB.

    Needs the server's settings (LIVEAUDIO_SQLITE_PATH or LIVEAUDIO_DATABASE_URL).
    """
    setup_django()
    from rooms.models import App
    from rooms.tokens import token_mint

    app = App.objects.get(app_id=app_id)
    return [
        token_mint(
            app=app, room_id=room_id, user_id=u, user_name=u, role=r, ttl_seconds=ttl_seconds
        )
        for u, r in users
    ]


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveaudio.settings")
    import django

    django.setup()


# -- command line ----------------------------------------------------------------------


async def _main(args: argparse.Namespace, token: str) -> None:
    bot = Bot(
        args.user,
        args.tone or None,
        send=bool(args.tone) or args.seat is not None,
        bursts=args.bursts,
        probe_frequencies=args.listen,
    )
    channel, times = await join_over_websocket(
        bot,
        room_url(args.server, args.app, args.room, token),
        seat_index=args.seat,
        origin=origin_of(args.server),
    )
    print(
        f"joined: answer {times.answered * 1000:.0f} ms, connected {times.connected * 1000:.0f} ms"
    )
    try:
        for _ in range(int(args.seconds)):
            await asyncio.sleep(1)
            print(await _describe(bot, args.listen))
    finally:
        await channel.close()
        await bot.close()


async def _describe(bot: Bot, listen: Sequence[float]) -> str:
    stats = await bot.receive_stats()
    dominant = bot.dominant_frequency()
    latencies = {
        f: f"{1000 * float(np.median(v)):.0f}ms"
        for f, v in bot.burst_latencies().items()
        if v  # burst onsets seen so far, median end-to-end latency
    }
    return (
        f"packets={stats.packets_received} lost={stats.packets_lost} ({stats.loss:.2%}) "
        f"dominant={'-' if dominant is None else f'{dominant:.0f}Hz'} "
        f"hears={sorted(bot.hears(listen))} burst_latency={latencies}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="liveaudio test participant")
    parser.add_argument("--server", default="http://127.0.0.1:8100")
    parser.add_argument("--app", type=int, default=DEFAULT_APP_ID)
    parser.add_argument("--room", default="demo")
    parser.add_argument("--user", default="bot1")
    parser.add_argument("--role", default=None, help="e.g. host (for seat 0)")
    parser.add_argument("--token", default=None, help="default: minted from the server's DB")
    parser.add_argument("--tone", type=float, default=0.0, help="Hz; 0 = no microphone")
    parser.add_argument("--bursts", action="store_true", help="tone 200 ms per second only")
    parser.add_argument("--seat", type=int, default=None)
    parser.add_argument("--listen", type=float, nargs="*", default=[440.0, 660.0, 880.0])
    parser.add_argument("--seconds", type=float, default=10)
    return parser


if __name__ == "__main__":
    cli = _parser().parse_args()
    # Minted before the loop starts: Django's ORM refuses to run inside one.
    cli_token = cli.token or mint_tokens(cli.app, cli.room, [(cli.user, cli.role)])[0]
    asyncio.run(_main(cli, cli_token))
