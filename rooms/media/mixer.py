"""RoomMixer: the 20 ms clock that mixes a room's audible sources for each listener.

Who hears what is decided by two inputs from the Django side: which
participants are audible (seated and unmuted) and which seats each listener has
muted locally. A listener's *mix key* is the set of audible sources it hears;
listeners with the same key share one Opus encoder and receive the very same
`av.Packet` objects, so a room of 1000 listeners and 4 speakers encodes about
5 mixes per tick (one per speaker, who never hears themself, plus the audience).

A media file (`set_media`, a `player.MediaPlayer`) is one more source that every
listener hears, speakers included, unless they muted `MEDIA_SOURCE_ID` locally: it joins
each mix key, so it adds no mix of its own (a listener who muted it shares the mix of
those who hear no media).

SEIs (`sei.py`) wait in the mixer for the frame of their speaker's audio they were sent with
(`send_sei`) and are released with that tick, stamped with its outbound RTP timestamp: every
mix of the room shares one timeline, `rtp_origin + pts`, so the stamp holds for every
listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import av
import numpy as np
from aiortc.utils import random32

from .codec import FRAME_SAMPLES, TIME_BASE, new_opus_encoder, pcm_frame
from .feeds import Feed, FeedSender
from .levels import rms_level
from .outbound import DEFAULT_MAX_QUEUED, MixedAudioTrack, fan_out, take_track
from .player import MEDIA_SOURCE_ID
from .playout import PlayoutFrame
from .sei import RTP_MASK, Sei, SeiHook, SeiQueue, SeiRelease

logger = logging.getLogger(__name__)

TICK_SECONDS = FRAME_SAMPLES / 48000
LATE_SECONDS = 0.005  # a tick starting this late counts as late
RESYNC_TICKS = 5  # further behind than this: skip ahead instead of bursting
LEVELS_EVERY_TICKS = 6  # ~8 level reports per second
FANOUT_CHUNK = 50  # listeners sent to between two looks at the sockets
FEED_EXPIRY_TICKS = 50  # how often feeds no relay renewed are dropped (once a second)
FULL_SCALE = 32767.0
LIMITER_KNEE = 0.7 * FULL_SCALE

MixKey = frozenset[str]
LevelsCallback = Callable[[dict[str, float]], None]


class FrameSource(Protocol):
    """What the mixer needs from an inbound stream (a `PlayoutBuffer`)."""

    def pull(self) -> PlayoutFrame | None: ...

    def clear(self) -> None: ...


@dataclass
class MixerStats:
    """Counters for tests, benchmarks and the admin: all cumulative."""

    ticks: int = 0
    late_ticks: int = 0
    resyncs: int = 0
    skipped_ticks: int = 0  # audio never made: the mixer was too far behind (see _run)
    encodes: int = 0
    encodes_last_tick: int = 0
    max_encodes_per_tick: int = 0
    tick_seconds: float = 0.0  # wall time spent inside tick(); ~CPU, single thread
    max_tick_seconds: float = 0.0
    # Server-added latency: packet arrival -> mix containing it queued / sent.
    queued_latency: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    sent_latency: deque[float] = field(default_factory=lambda: deque(maxlen=2000))


@dataclass
class _Mix:
    encoder: av.AudioCodecContext
    listeners: list[str]
    feeds: list[Feed] = field(default_factory=list)  # relays that get this mix (relay.py)


def soft_limit(mix: np.ndarray) -> np.ndarray:
    """Float mix -> int16 without wrap-around: linear below the knee, tanh above.

    A per-sample soft clipper rather than a gain-riding limiter: it costs nothing
    when the sum stays below the knee, which is the normal case in a voice room.
    """
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak <= LIMITER_KNEE:
        return mix.astype(np.int16)
    headroom = FULL_SCALE - LIMITER_KNEE
    magnitude = np.abs(mix)
    over = magnitude > LIMITER_KNEE
    magnitude[over] = LIMITER_KNEE + headroom * np.tanh((magnitude[over] - LIMITER_KNEE) / headroom)
    return (np.sign(mix) * magnitude).astype(np.int16)


class RoomMixer:
    """One per room. Drive it with `start()` / `await stop()`, or call `tick()`."""

    def __init__(
        self,
        *,
        on_levels: LevelsCallback | None = None,
        on_sei: SeiHook | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        bitrate: int = 32000,
    ) -> None:
        self.stats = MixerStats()
        self.levels: dict[str, float] = {}
        # Where the room's RTP timeline starts: random, as RFC 3550 asks, and one for every
        # mix and listener, so an SEI's timestamp means the same audio to all of them.
        self.rtp_origin = random32()
        self._on_levels = on_levels
        self._on_sei = on_sei
        self._sei: dict[str, SeiQueue] = {}
        self._max_queued = max_queued
        self._bitrate = bitrate
        self._tracks: dict[str, MixedAudioTrack] = {}
        self._sources: dict[str, FrameSource] = {}
        self._media: FrameSource | None = None
        self._audible: set[str] = set()
        self._local_mutes: dict[str, frozenset[str]] = {}
        self._mixes: dict[MixKey, _Mix] = {}
        self._groups_dirty = True
        self._level_peaks: dict[str, float] = {}
        self._tick_index = 0
        self._task: asyncio.Task[None] | None = None
        self.feeds: FeedSender | None = None  # the relays' feeds, once one asks (ask_feeds)

    # -- membership and rules (called by the consumer) -------------------------

    def new_track(self) -> MixedAudioTrack:
        """A track for a participant's mix, not yet fed (see `add_participant`)."""
        return MixedAudioTrack(
            max_queued=self._max_queued, on_sent=self._record_sent, timestamp_origin=self.rtp_origin
        )

    def add_participant(self, pid: str, track: MixedAudioTrack | None = None) -> MixedAudioTrack:
        """Register a participant and return the track carrying its mix.

        With `track`, that track takes over from any track the participant had (which
        ends); without, the participant's current track is kept or a new one made.
        """
        track = take_track(self._tracks, pid, track, self.new_track)
        self._groups_dirty = True
        return track

    def attach_source(self, pid: str, source: FrameSource) -> None:
        """Connect a participant's inbound audio (its playout buffer)."""
        self._sources[pid] = source

    def remove_participant(self, pid: str, *, track: MixedAudioTrack | None = None) -> None:
        """Forget a participant; its track ends. Audible/mute settings are kept
        so a reconnecting participant keeps its seat state.

        With `track`, only if that is still the participant's track: a peer that
        was replaced by a reconnection must not remove its successor.
        """
        if track is not None and self._tracks.get(pid) is not track:
            return
        track = self._tracks.pop(pid, None)
        self._sources.pop(pid, None)
        self._sei.pop(pid, None)
        self._level_peaks.pop(pid, None)
        if track is not None:
            track.stop()
        self._groups_dirty = True

    def set_audible(self, pid: str, audible: bool) -> None:
        """Only audible participants (seated and unmuted) are ever mixed."""
        if audible:
            self._audible.add(pid)
        else:
            self._audible.discard(pid)
        self._groups_dirty = True

    def set_local_mutes(self, pid: str, muted: Iterable[str]) -> None:
        """Sources this listener muted for itself only (`MEDIA_SOURCE_ID`: the media)."""
        self._local_mutes[pid] = frozenset(muted)
        self._groups_dirty = True

    def set_media(self, source: FrameSource | None) -> None:
        """The room's media playback (at most one), pulled every tick even with no
        listeners, so its position follows the clock; None removes it."""
        self._media = source
        self._groups_dirty = True

    def send_sei(self, source: str, sei: Sei, timestamp: int | None = None) -> bool:
        """Hold `sei` until the tick that mixes `source`'s audio at RTP `timestamp` (None:
        its next frame); False when that source is not heard (not audible, no media)."""
        if source == MEDIA_SOURCE_ID:
            if self._media is None:
                return False
        elif source not in self._audible or source not in self._sources:
            return False
        self._sei.setdefault(source, SeiQueue()).add(sei, timestamp)
        return True

    def ask_feeds(
        self, sock: socket.socket, address: tuple[str, int], feeds: dict[int, frozenset[str]]
    ) -> None:
        """A relay's wish list of this room's mixes (`feeds.FeedSender.ask`), sent from `sock`."""
        if self.feeds is None:
            self.feeds = FeedSender(sock)
        self.feeds.ask(address, feeds)

    def mix_key_for(self, pid: str) -> MixKey:
        """The audible sources `pid` hears: never itself, never what it muted."""
        return self._key_without(self._local_mutes.get(pid, frozenset()) | {pid})

    def _key_without(self, mutes: frozenset[str]) -> MixKey:
        heard = {s for s in self._audible if s in self._tracks and s not in mutes}
        if self._media is not None and MEDIA_SOURCE_ID not in mutes:
            heard.add(MEDIA_SOURCE_ID)
        return frozenset(heard)

    @property
    def encoder_count(self) -> int:
        return len(self._mixes)

    @property
    def participants(self) -> list[str]:
        return list(self._tracks)

    # -- clock ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="RoomMixer.clock")

    async def stop(self) -> None:
        """Stop the clock and end every participant's track."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pid in list(self._tracks):
            self.remove_participant(pid)
        self._mixes.clear()

    async def _run(self) -> None:
        """Tick on absolute deadlines so the clock never drifts from wall time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += TICK_SECONDS
            delay = deadline - loop.time()
            await asyncio.sleep(max(0.0, delay))
            lateness = loop.time() - deadline
            if lateness > LATE_SECONDS:
                self.stats.late_ticks += 1
            if lateness > RESYNC_TICKS * TICK_SECONDS:
                # Stalled: skip ahead rather than burst, and say so. The ticks not run are
                # counted and the timeline moves on by the time they stood for, so every
                # listener's RTP timestamps and sequence numbers show the gap (the browser
                # conceals it) instead of the room's audio quietly running slow.
                skipped = int(lateness / TICK_SECONDS)
                self.stats.resyncs += 1
                self.stats.skipped_ticks += skipped
                self._tick_index += skipped
                deadline = loop.time()
            try:
                for _ in self._tick_steps():
                    await asyncio.sleep(0)  # let the loop read its sockets between chunks
            except Exception:
                logger.exception("mixer tick failed")

    # -- one tick --------------------------------------------------------------

    def tick(self) -> None:
        """Pull a frame per audible source, mix each distinct key once, fan out."""
        for _ in self._tick_steps():
            pass

    def _tick_steps(self) -> Iterator[None]:
        """One tick, pausing (yielding) after every `FANOUT_CHUNK` listeners sent to.

        Sending to hundreds of listeners takes milliseconds; the clock's loop reads the
        speakers' sockets in those pauses, so their packets are taken (and time-stamped)
        when they come, not after the whole fan-out.
        """
        started = time.perf_counter()
        self._tick_index += 1
        pts = self._tick_index * FRAME_SAMPLES
        frames = self._pull_frames()
        if self._sei:
            self._release_sei(frames, (self.rtp_origin + pts) & RTP_MASK)
        self._update_levels(frames)
        feeds = self.feeds
        if feeds is not None and not self._tick_index % FEED_EXPIRY_TICKS:
            feeds.expire(time.monotonic())
        if self._groups_dirty or (feeds is not None and feeds.changed):
            self._regroup()
        mixes = self._mixes.items()
        outgoing = [(mix, *self._encode_mix(key, mix, frames, pts)) for key, mix in mixes]
        budget = FANOUT_CHUNK  # listeners until the next pause
        for mix, packets, arrival in outgoing:
            for packet, payload in packets:
                if mix.feeds and feeds is not None:  # the relays first: theirs is a longer way
                    feeds.send(mix.feeds, (self.rtp_origin + pts) & RTP_MASK, payload)
                listeners, start = mix.listeners, 0
                while start < len(listeners):
                    chunk = listeners[start : start + budget]
                    start += len(chunk)
                    tracks = self._tracks
                    # One pass per chunk (`fan_out`: protect each, send socket by socket);
                    # a listener gone during a pause is skipped.
                    fan_out(
                        [t for pid in chunk if (t := tracks.get(pid)) is not None],
                        packet,
                        arrival,
                        payload,
                    )
                    budget -= len(chunk)
                    if budget == 0:
                        budget = FANOUT_CHUNK
                        yield
        self._count_tick(len(outgoing), time.perf_counter() - started)

    def _pull_frames(self) -> dict[str, PlayoutFrame]:
        frames: dict[str, PlayoutFrame] = {}
        for pid, source in self._sources.items():
            if pid not in self._audible:
                source.clear()  # whatever it sends is never heard, nor kept
                self._sei.pop(pid, None)  # nor what it sent with it
                continue
            frame = source.pull()
            if frame is not None:
                frames[pid] = frame
        media = self._media.pull() if self._media is not None else None
        if media is not None:
            frames[MEDIA_SOURCE_ID] = media
        return frames

    def _release_sei(self, frames: dict[str, PlayoutFrame], rtp_timestamp: int) -> None:
        """Hand on the SEIs whose audio this tick mixes, stamped with its RTP timestamp."""
        released: list[tuple[int, Sei]] = []
        for source, queue in list(self._sei.items()):
            frame = frames.get(source)
            timestamp = frame.timestamp if frame is not None else None
            for offset, sei in queue.due(timestamp, pulled=frame is not None):
                released.append(((rtp_timestamp + offset) & RTP_MASK, sei))
            if not queue:
                del self._sei[source]
        if released and self._on_sei is not None:
            try:
                self._on_sei(SeiRelease(tuple(released)))
            except Exception:
                logger.exception("SEI callback failed")

    def _regroup(self) -> None:
        """Recompute who shares which mix; keep encoders of mixes that still exist."""
        groups: dict[MixKey, list[str]] = {}
        for pid in self._tracks:
            groups.setdefault(self.mix_key_for(pid), []).append(pid)
        feeds: dict[MixKey, list[Feed]] = {}
        if self.feeds is not None:
            for feed in self.feeds.feeds():
                key = self._key_without(feed.mutes)
                feeds.setdefault(key, []).append(feed)
                groups.setdefault(key, [])
            self.feeds.changed = False
        old = self._mixes
        self._mixes = {
            key: _Mix(
                encoder=old[key].encoder if key in old else new_opus_encoder(self._bitrate),
                listeners=listeners,
                feeds=feeds.get(key, []),
            )
            for key, listeners in groups.items()
        }
        self._groups_dirty = False

    def _encode_mix(
        self, key: MixKey, mix: _Mix, frames: dict[str, PlayoutFrame], pts: int
    ) -> tuple[list[tuple[av.Packet, bytes]], float | None]:
        """Sum and encode one mix: its packets (with their bytes) and its oldest arrival."""
        heard = [frames[s] for s in key if s in frames]
        packets = mix.encoder.encode(pcm_frame(self._sum(heard), pts))
        self.stats.encodes += 1
        arrivals = [f.arrival for f in heard if f.arrival is not None]
        arrival = min(arrivals) if arrivals else None
        now = time.monotonic()
        for packet in packets:
            # One timeline for every mix, so a listener moving between mixes
            # (someone unmutes) keeps continuous RTP timestamps.
            packet.pts = pts
            packet.time_base = TIME_BASE
            if arrival is not None:
                self.stats.queued_latency.append(now - arrival)
        return [(packet, bytes(packet)) for packet in packets], arrival

    @staticmethod
    def _sum(heard: list[PlayoutFrame]) -> np.ndarray:
        if not heard:
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if len(heard) == 1:
            return heard[0].pcm
        total = heard[0].pcm.astype(np.float32)
        for frame in heard[1:]:
            total += frame.pcm
        return soft_limit(total)

    def _update_levels(self, frames: dict[str, PlayoutFrame]) -> None:
        for pid, frame in frames.items():
            level = rms_level(frame.pcm)
            if level > self._level_peaks.get(pid, 0.0):
                self._level_peaks[pid] = level
        if self._tick_index % LEVELS_EVERY_TICKS:
            return
        self.levels = {
            pid: self._level_peaks.get(pid, 0.0) for pid in self._audible if pid in self._tracks
        }
        self._level_peaks.clear()
        if self._on_levels is not None:
            try:
                self._on_levels(self.levels)
            except Exception:
                logger.exception("levels callback failed")

    def _count_tick(self, encodes: int, seconds: float) -> None:
        stats = self.stats
        stats.ticks += 1
        stats.encodes_last_tick = encodes
        stats.max_encodes_per_tick = max(stats.max_encodes_per_tick, encodes)
        stats.tick_seconds += seconds
        stats.max_tick_seconds = max(stats.max_tick_seconds, seconds)

    def _record_sent(self, latency: float) -> None:
        self.stats.sent_latency.append(latency)
