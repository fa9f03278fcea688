"""MediaPlayer: a media file as one more source of a room's mixer, heard by everyone.

The mixer's 20 ms clock must never wait on a disk or a decoder, so the file is decoded on a
thread of its own (PyAV), resampled to 48 kHz mono and cut into 20 ms frames that wait in a
bounded queue (`READ_AHEAD_FRAMES`, 1.5 s). The clock `pull()`s one frame a tick without
blocking: an empty queue is a tick of silence (counted as an underrun), never a late tick.
When the queue is full the thread waits, so a paused or long file costs no more memory.

The position is what the mixer has played out (the end of the last frame pulled), not what
was decoded: that is what listeners hear. Volume is applied when a frame is pulled, so a
volume change is heard on the next tick rather than after the read-ahead.

A playout is one `PlaybackSpec.key`: a seek or a restart is a new key, hence a new player
(the old one's read-ahead is thrown away with it). The same key only changes pause, repeat
and volume. The thread always ends: at the end of the file, on a decode error (the player
then reports `failed` with a sentence), or when `stop()` is called.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import av
import numpy as np

from .codec import FRAME_SAMPLES, SAMPLE_RATE
from .playout import PlayoutFrame

logger = logging.getLogger(__name__)

MEDIA_SOURCE_ID = "#media"  # the media's source id in the mixer; user ids never start with '#'
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE
READ_AHEAD_FRAMES = 75  # 1.5 s of audio decoded ahead of the clock
REPORT_EVERY_SECONDS = 0.25
PUT_POLL_SECONDS = 0.1  # how often a thread waiting on a full queue looks for stop()
STOP_TIMEOUT = 5.0
# Decoding that ends this much before the container's stated duration is a damaged file.
TRUNCATED_SLACK_MS = 1000
FULL_SCALE = 32767.0
OPEN_FAILED = "The file could not be opened as media with an audio track; it may be damaged."
DECODE_FAILED = "The file could not be decoded to its end; it may be truncated or damaged."

PLAYING, PAUSING, PLAY_ENDED, FAILED = "playing", "pausing", "playEnded", "failed"


@dataclass(frozen=True)
class PlaybackSpec:
    """What the room should play; the Django side's word, sent whole on every change."""

    key: str  # a new key = a new playout (play, seek, resume after a restart)
    path: str  # a local file path PyAV can open
    start_ms: int  # where a NEW key starts; ignored when the key is the current one
    paused: bool
    repeat: bool
    volume: int  # 0..100: linear amplitude gain volume/100


@dataclass(frozen=True)
class PlaybackReport:
    """Where a playout is: sent on every change and every 250 ms while playing."""

    key: str
    state: str  # "playing" | "pausing" | "playEnded" | "failed"
    position_ms: int  # what listeners hear now (not the read-ahead)
    duration_ms: int
    error: str = ""  # with "failed": a plain sentence


@dataclass
class PlayerStats:
    frames: int = 0  # frames mixed
    underruns: int = 0  # ticks of silence because the decoder was behind
    loops: int = 0  # times a repeating file started again


@dataclass(frozen=True)
class _Chunk:
    pcm: np.ndarray  # float32, FRAME_SAMPLES long, full scale 1.0
    end_ms: int  # the file position at the end of this frame


@dataclass(frozen=True)
class _End:
    error: str = ""  # empty: the file ended normally


ReportListener = Callable[[PlaybackReport], None]


class MediaPlayer:
    """One playout of one file; made, pulled and stopped on the mixer's loop."""

    def __init__(self, spec: PlaybackSpec, on_report: ReportListener | None = None) -> None:
        self.key = spec.key
        self.stats = PlayerStats()
        self._spec = spec
        self._on_report = on_report
        self._gain = gain_for(spec.volume)
        self._position_ms = max(0, spec.start_ms)
        self._duration_ms = 0  # written once by the decoder thread when it has opened the file
        self._opened = False  # the decoder thread's own
        self._state = PAUSING if spec.paused else PLAYING
        self._error = ""
        self._started = False  # a first frame was pulled: later empty ticks are underruns
        self._last_report = 0.0
        self._queue: queue.Queue[_Chunk | _End] = queue.Queue(READ_AHEAD_FRAMES)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._decode, name=f"liveaudio-player-{spec.key}", daemon=True
        )
        self._thread.start()
        self._report()

    # -- control (the mixer's loop) ----------------------------------------------------------

    def update(self, spec: PlaybackSpec) -> None:
        """The same playout, new pause / repeat / volume; reported at once."""
        self._spec = spec
        self._gain = gain_for(spec.volume)
        if self._state in (PLAYING, PAUSING):
            self._state = PAUSING if spec.paused else PLAYING
        self._report()

    def stop(self) -> None:
        """Let the decoder thread end (it looks every `PUT_POLL_SECONDS`); returns at once."""
        self._stopping.set()
        self._drain()

    async def close(self) -> None:
        """`stop()`, then wait for the thread without blocking the loop."""
        self.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._drain()  # a thread blocked on a full queue gets its place and sees the stop
            await asyncio.sleep(0.01)
        if self._thread.is_alive():
            logger.warning("media player thread %s did not stop", self._thread.name)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Frames decoded ahead of the clock (at most `READ_AHEAD_FRAMES`)."""
        return self._queue.qsize()

    def report(self) -> PlaybackReport:
        return PlaybackReport(
            self.key, self._state, self._position_ms, self._duration_ms, self._error
        )

    # -- the mixer's side --------------------------------------------------------------------

    def pull(self) -> PlayoutFrame | None:
        """This tick's frame, or None (paused, ended, or the decoder behind); never blocks."""
        if self._state != PLAYING:
            return None
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            if self._started:
                self.stats.underruns += 1
            self._report_periodically()
            return None
        if isinstance(item, _End):
            self._end(item)
            return None
        self._started = True
        self.stats.frames += 1
        self._position_ms = item.end_ms
        self._report_periodically()
        # Decoded lossy audio may overshoot full scale a little: clip, never wrap around.
        scaled = np.clip(item.pcm * (self._gain * FULL_SCALE), -FULL_SCALE, FULL_SCALE)
        pcm = scaled.astype(np.int16)
        # Stamped when it enters the mix: the mixer's latency figures then measure what the
        # server adds after that (encode and send), as for a speaker's packet.
        return PlayoutFrame(pcm=pcm, arrival=time.monotonic())

    def clear(self) -> None:
        """The mixer's `FrameSource` call; a player has nothing worth dropping."""

    # -- internals ---------------------------------------------------------------------------

    def _end(self, end: _End) -> None:
        if end.error:
            self._state, self._error = FAILED, end.error
        else:
            self._state = PLAY_ENDED
            self._position_ms = max(self._position_ms, self._duration_ms)
        self._report()

    def _report_periodically(self) -> None:
        if time.monotonic() - self._last_report >= REPORT_EVERY_SECONDS:
            self._report()

    def _report(self) -> None:
        self._last_report = time.monotonic()
        if self._on_report is None:
            return
        try:
            self._on_report(self.report())
        except Exception:
            logger.exception("playback report listener failed")

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    # -- the decoder thread ------------------------------------------------------------------

    def _decode(self) -> None:
        """Fill the queue until the file ends, fails, or `stop()`; always puts an `_End`."""
        try:
            end = self._decode_file()
        except Exception as exc:  # a bug, not the file: say so rather than hang the playout
            logger.exception("media player %s failed", self.key)
            end = _End(f"The media could not be played ({type(exc).__name__}).")
        self._put(end)

    def _decode_file(self) -> _End:
        start_ms = self._position_ms
        while not self._stopping.is_set():
            try:
                ended_at = self._play_once(start_ms)
            except (av.FFmpegError, OSError):
                return _End(OPEN_FAILED if not self._opened else DECODE_FAILED)
            if ended_at is None:  # stopped
                break
            if self._duration_ms and ended_at < self._duration_ms - TRUNCATED_SLACK_MS:
                return _End(
                    f"The file ends at {ended_at / 1000:.1f} s of its "
                    f"{self._duration_ms / 1000:.1f} s: it is truncated or damaged."
                )
            if not self._spec.repeat:
                break
            self.stats.loops += 1
            start_ms = 0
        return _End()

    def _play_once(self, start_ms: int) -> int | None:
        """Decode from `start_ms` to the end; the file position reached, or None if stopped."""
        with av.open(self._spec.path, metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise av.InvalidDataError(0, "no audio stream")
            stream = container.streams.audio[0]
            if not self._opened:
                self._duration_ms = duration_ms_of(container, stream)
                self._opened = True
            position = start_ms
            for pcm in frames_from(container, stream, start_ms):
                position += FRAME_MS
                if not self._put(_Chunk(pcm, position)):
                    return None
            return position

    def _put(self, item: _Chunk | _End) -> bool:
        """Wait for room in the queue; False when stopped meanwhile."""
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


# -- decoding (pure functions, on the decoder thread) --------------------------------------------


@dataclass
class _Framer:
    """Cuts resampled audio into FRAME_SAMPLES frames, skipping the first `skip` samples."""

    skip: int
    pending: list[np.ndarray] = field(default_factory=list)
    size: int = 0

    def feed(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        if self.skip:
            dropped = min(self.skip, samples.size)
            samples, self.skip = samples[dropped:], self.skip - dropped
        if samples.size:
            self.pending.append(samples)
            self.size += samples.size
        while self.size >= FRAME_SAMPLES:
            joined = np.concatenate(self.pending)
            yield joined[:FRAME_SAMPLES]
            rest = joined[FRAME_SAMPLES:]
            self.pending, self.size = ([rest] if rest.size else []), rest.size

    def flush(self) -> Iterator[np.ndarray]:
        """The last partial frame, padded with silence."""
        if self.size:
            joined = np.concatenate(self.pending)
            yield np.concatenate([joined, np.zeros(FRAME_SAMPLES - joined.size, np.float32)])
        self.pending, self.size = [], 0


def frames_from(
    container: av.container.InputContainer, stream: av.AudioStream, start_ms: int
) -> Iterator[np.ndarray]:
    """float32 48 kHz mono FRAME_SAMPLES frames of `stream` from `start_ms` to its end.

    Seeks to the keyframe before `start_ms` (where the container can), then drops the samples
    up to `start_ms` exactly, measured from the first decoded frame's time stamp.
    """
    if start_ms and stream.time_base is not None:
        target = int(start_ms / 1000 / stream.time_base)
        try:
            container.seek(target, stream=stream, backward=True)
        except av.FFmpegError:
            container.seek(0, stream=stream)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    framer: _Framer | None = None
    for packet in container.demux(stream):
        for frame in packet.decode():
            if framer is None:
                framer = _Framer(skip=samples_to_skip(frame, start_ms))
            for out in resampler.resample(frame):
                yield from framer.feed(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        if framer is not None:
            yield from framer.feed(out.to_ndarray().reshape(-1))
    if framer is not None:
        yield from framer.flush()


def samples_to_skip(first: av.AudioFrame, start_ms: int) -> int:
    """48 kHz samples between the first decoded frame and `start_ms` (0 when unknown)."""
    if first.pts is None or first.time_base is None:
        return 0
    first_ms = float(first.pts * first.time_base) * 1000
    return max(0, round((start_ms - first_ms) * SAMPLE_RATE / 1000))


def duration_ms_of(container: av.container.InputContainer, stream: av.AudioStream) -> int:
    if stream.duration is not None and stream.time_base is not None:
        return int(stream.duration * stream.time_base * 1000)
    if container.duration is not None:
        return container.duration // 1000  # AV_TIME_BASE: microseconds
    return 0


def gain_for(volume: int) -> float:
    return min(100, max(0, volume)) / 100
