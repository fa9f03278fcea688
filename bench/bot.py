"""A Python participant: sends a sine tone over WebRTC, analyses what it hears.

Two ways in:
- `connect_in_process(bot, media_peer)`: offer/answer handed over directly
  (tests, benchmarks, one event loop);
- `join_over_websocket(bot, url, ...)`: the room's socket protocol, for a bot
  joining a running server. Kept separate so the signalling can change
  without touching the media side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import av
import numpy as np
from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rooms.media.ice import install_consent_leak_fix, rtc_configuration

if TYPE_CHECKING:
    from rooms.media.peer import MediaPeer

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


class ToneTrack(MediaStreamTrack):
    """20 ms s16 mono 48 kHz frames of a sine tone, paced by wall-clock deadlines."""

    kind = "audio"

    def __init__(self, frequency: float | None, amplitude: int = 6000) -> None:
        super().__init__()
        self.frequency = frequency  # None or 0: silence (a listener's muted mic)
        self.amplitude = amplitude
        self._samples_sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        await self._wait_for_deadline()
        pcm = self._next_pcm()
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples_sent
        frame.time_base = TIME_BASE
        self._samples_sent += FRAME_SAMPLES
        return frame

    async def _wait_for_deadline(self) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        deadline = self._start + self._samples_sent / SAMPLE_RATE
        if deadline > now:
            await asyncio.sleep(deadline - now)

    def _next_pcm(self) -> np.ndarray:
        if not self.frequency:
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        n = np.arange(self._samples_sent, self._samples_sent + FRAME_SAMPLES)
        wave = self.amplitude * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)
        return wave.astype(np.int16)


@dataclass
class ReceiveStats:
    packets_received: int
    packets_lost: int
    frames_decoded: int


class Bot:
    """One participant: a tone on its microphone, ears on what the server mixes."""

    def __init__(
        self,
        name: str,
        frequency: float | None = None,
        *,
        ice_servers: Iterable[RTCIceServer] = (),
        memory_seconds: float = 2.0,
    ) -> None:
        install_consent_leak_fix()
        self.name = name
        self.tone = ToneTrack(frequency)
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.pc.addTransceiver(self.tone, direction="sendrecv")
        self.pc.on("track", self._on_track)
        self.frames_decoded = 0
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

    # -- what it hears ---------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._listener is None:
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
        audio = self.recent_audio(seconds).astype(np.float32)
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

    def hears(
        self, frequencies: Sequence[float], threshold: float = 600.0, seconds: float = 0.5
    ) -> set[float]:
        """Which of `frequencies` are present above `threshold` in recent audio."""
        amplitudes = self.tone_amplitudes(frequencies, seconds)
        return {f for f, a in amplitudes.items() if a >= threshold}

    async def receive_stats(self) -> ReceiveStats:
        received = lost = 0
        for stat in (await self.pc.getStats()).values():
            if stat.type == "inbound-rtp":
                received += stat.packetsReceived
                lost += stat.packetsLost
        return ReceiveStats(received, lost, self.frames_decoded)


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


class JsonChannel(Protocol):
    """The room socket as the bot needs it: JSON objects in and out."""

    async def send_json(self, message: dict[str, Any]) -> None: ...

    async def recv_json(self) -> dict[str, Any]: ...


async def negotiate_over(
    channel: JsonChannel, bot: Bot, *, seat_index: int | None = None, timeout: float = 10.0
) -> None:
    """The room protocol: `rtc.offer` -> `rtc.answer`, then optionally `seat.take`."""
    await channel.send_json({"action": "rtc.offer", "sdp": await bot.create_offer()})
    async with asyncio.timeout(timeout):
        while True:
            message = await channel.recv_json()
            if message.get("type") == "rtc.answer":
                await bot.accept_answer(message["sdp"])
                break
    if seat_index is not None:
        await channel.send_json({"action": "seat.take", "index": seat_index})


class WebsocketChannel:
    """JsonChannel over the `websockets` package; skips non-JSON (htmx HTML) frames."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    @classmethod
    async def connect(cls, url: str, origin: str | None = None) -> WebsocketChannel:
        try:
            import websockets  # optional: only bots joining a live server need it
        except ImportError as exc:
            raise RuntimeError("pip install websockets to join over the socket") from exc
        headers = {"Origin": origin} if origin else None
        return cls(await websockets.connect(url, additional_headers=headers))

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def recv_json(self) -> dict[str, Any]:
        while True:
            text = await self.socket.recv()
            with contextlib.suppress(ValueError):
                message = json.loads(text)
                if isinstance(message, dict):
                    return message

    async def close(self) -> None:
        await self.socket.close()


def room_url(host: str, app_id: str, room_id: str, token: str) -> str:
    return f"ws://{host}/ws/rooms/{app_id}/{room_id}/?token={token}"


async def join_over_websocket(
    bot: Bot, url: str, *, seat_index: int | None = None, origin: str | None = None
) -> WebsocketChannel:
    """Join a running room; keep the returned channel open while the bot stays."""
    channel = await WebsocketChannel.connect(url, origin)
    await negotiate_over(channel, bot, seat_index=seat_index)
    return channel


async def _main(args: argparse.Namespace) -> None:
    bot = Bot("cli", args.freq or None)
    channel = await join_over_websocket(
        bot, room_url(args.host, args.app, args.room, args.token), seat_index=args.seat
    )
    try:
        for _ in range(int(args.seconds)):
            await asyncio.sleep(1)
            stats = await bot.receive_stats()
            print(f"hears={sorted(bot.hears(args.listen))} {stats}")
    finally:
        await channel.close()
        await bot.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="liveaudio test participant")
    parser.add_argument("--host", default="127.0.0.1:8000")
    parser.add_argument("--app", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--freq", type=float, default=440.0, help="0 = silent")
    parser.add_argument("--seat", type=int, default=None)
    parser.add_argument("--listen", type=float, nargs="*", default=[440.0, 660.0, 880.0])
    parser.add_argument("--seconds", type=float, default=10)
    asyncio.run(_main(parser.parse_args()))
