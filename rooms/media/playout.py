"""A timestamp-driven playout buffer for one inbound Opus stream.

Why not aiortc's own `JitterBuffer` + `RemoteStreamTrack`: it primes with 4
packets (80 ms), and one lost packet stalls it until it fills up again, which
pushes every later frame out by a further 200 ms for the rest of the call. A
live room needs the opposite: a short fixed target and losses that are
concealed and forgotten.

How it plays: packets are stored by their (unwrapped) RTP timestamp. The mixer
`pull()`s one 20 ms frame per tick. Playback starts once the target delay of audio is
buffered; after that each pull plays the packet at the expected timestamp, or
conceals it (fading repeat of the last frame) if it is missing, and moves on. A
packet that arrives after its slot is dropped, never waited for, so a loss costs
20 ms of concealment and no lasting delay. If the sender runs faster than our
clock (or delivers a burst) and more than `max_ms` piles up, the oldest audio is
skipped to bring the delay back to the target. Opus' own PLC and FEC decoding are
not reachable through PyAV's libopus wrapper (an empty packet means EOF there),
hence the repeat-fade concealment.

The target adapts to the stream (`JitterEstimate`): 20 ms for a steady sender, up to
60 ms for one whose packets arrive unevenly. It grows only when the next packet has not
arrived yet (an underrun) *and* the measured jitter asks for more: then the slot is held
for a tick (concealed) instead of skipped, which adds 20 ms. It shrinks by skipping one
frame when the buffer stayed above the target for a whole second. A lost packet gives no
jitter sample, so it never raises the target.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .codec import FRAME_SAMPLES, SAMPLE_RATE, decode_pcm, new_opus_decoder

CONCEAL_GAIN = 0.6  # each concealed frame is this much quieter than the previous
MAX_CONCEALED = 5  # after 100 ms without audio, the stream counts as paused
RESYNC_SAMPLES = SAMPLE_RATE  # a 1 s timestamp jump is a new stream, not a loss
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE
JITTER_WINDOW_SECONDS = 2.0
JITTER_PERCENTILE = 0.95
# Arrival noise below this is absorbed by where packets land between two mixer ticks and
# by concealment; counting it would put every real-world stream at 40 ms.
JITTER_TOLERANCE_MS = 5.0
RETARGET_EVERY_PULLS = 10  # the percentile is recomputed every 200 ms, not per packet
SHRINK_WINDOW_PULLS = 50  # one second above the target before a frame is skipped


@dataclass
class PlayoutFrame:
    """One 20 ms tick of a source, ready to mix."""

    pcm: np.ndarray  # int16, FRAME_SAMPLES long
    arrival: float | None  # monotonic arrival of the packet; None when concealed
    concealed: bool = False
    # The RTP timestamp (32-bit) of the slot it plays, for SEIs (`sei.SeiQueue`); None for a
    # frame that plays no slot (a held underrun) or comes from no RTP stream.
    timestamp: int | None = None


@dataclass
class PlayoutStats:
    """Counters for tests and benchmarks."""

    received: int = 0
    played: int = 0
    concealed: int = 0
    late: int = 0
    skipped: int = 0
    held: int = 0  # underruns that raised the delay by one frame (adaptive target)
    shrunk: int = 0  # frames skipped because the buffer stayed above the target
    resyncs: int = 0
    decode_errors: int = 0


class TimestampUnwrapper:
    """Turns 32-bit RTP timestamps into a monotonic-ish int that never wraps."""

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, timestamp: int) -> int:
        if self._last is None:
            self._last = timestamp
            return timestamp
        delta = ((timestamp - self._last + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        self._last += delta
        return self._last


class JitterEstimate:
    """How unevenly a stream's packets arrive, over the last two seconds.

    Each packet's transit is its arrival time minus its RTP time; its jitter is how much
    later it came than the fastest packet of the window (clock offsets cancel out).
    """

    def __init__(self, window: float = JITTER_WINDOW_SECONDS) -> None:
        self._window = window
        self._transits: deque[tuple[float, float]] = deque()  # (arrival, transit)

    def add(self, arrival: float, ts: int) -> None:
        self._transits.append((arrival, arrival - ts / SAMPLE_RATE))
        while self._transits and self._transits[0][0] < arrival - self._window:
            self._transits.popleft()

    def percentile_ms(self, fraction: float = JITTER_PERCENTILE) -> float:
        if len(self._transits) < 2:
            return 0.0
        transits = sorted(transit for _, transit in self._transits)
        return 1000 * (transits[int(fraction * (len(transits) - 1))] - transits[0])

    def clear(self) -> None:
        self._transits.clear()


def target_for_jitter(jitter_ms: float, lowest_ms: int, highest_ms: int) -> int:
    """One frame plus the jitter rounded up to whole frames, within the bounds."""
    frames = math.ceil(max(0.0, jitter_ms - JITTER_TOLERANCE_MS) / FRAME_MS)
    return min(highest_ms, max(lowest_ms, (frames + 1) * FRAME_MS))


class PlayoutBuffer:
    """Reorders, times and decodes one speaker's packets for the mixer.

    `target_ms` fixes the target; without it the target adapts between
    `min_target_ms` and `max_target_ms` to the stream's jitter.
    """

    def __init__(
        self,
        *,
        target_ms: int | None = None,
        min_target_ms: int = 20,
        max_target_ms: int = 60,
        max_ms: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if target_ms is not None:
            min_target_ms = max_target_ms = target_ms
        self._min_target_ms, self._max_target_ms = min_target_ms, max_target_ms
        self.target_samples = min_target_ms * SAMPLE_RATE // 1000
        self.max_samples = max_ms * SAMPLE_RATE // 1000
        self.stats = PlayoutStats()
        self.jitter = JitterEstimate()
        self._pulls = 0
        self._lowest_buffered: int | None = None
        self._clock = clock
        self._decoder = new_opus_decoder()
        self._unwrapper = TimestampUnwrapper()
        self._packets: dict[int, tuple[bytes, float]] = {}
        self._next_ts: int | None = None
        self._newest_end: int | None = None
        self._playing = False
        self._last_pcm: np.ndarray | None = None
        self._concealed_in_row = 0

    # -- input side (called by the RTP receiver tap) --------------------------

    def push(self, payload: bytes, timestamp: int, arrival: float | None = None) -> None:
        """Store one packet; `timestamp` is the raw 32-bit RTP timestamp."""
        ts = self._unwrapper.unwrap(timestamp)
        arrival = self._clock() if arrival is None else arrival
        self.stats.received += 1
        if self._next_ts is not None and abs(ts - self._next_ts) > RESYNC_SAMPLES:
            self._resync()
        if self._next_ts is None or (not self._playing and ts < self._next_ts):
            self._next_ts = ts
        if ts < self._next_ts:
            self.stats.late += 1  # its slot was already played or concealed
            return
        self._packets.setdefault(ts, (payload, arrival))
        self.jitter.add(arrival, ts)
        end = ts + FRAME_SAMPLES
        self._newest_end = end if self._newest_end is None else max(self._newest_end, end)
        self._trim_to(self.max_samples * 2)  # bound memory even if nobody pulls

    # -- output side (called by the mixer once per tick) ----------------------

    def pull(self) -> PlayoutFrame | None:
        """The next 20 ms of this source, or None while it is not playing."""
        self._pulls += 1
        if self._pulls % RETARGET_EVERY_PULLS == 0 or not self._playing:
            self._retarget()
        if not self._playing and not self._start_if_primed():
            return None
        self._trim_to(self.max_samples)
        self._shrink_if_above_target()
        assert self._next_ts is not None
        packet = self._packets.pop(self._next_ts, None)
        if packet is not None:
            frame = self._decode(*packet)
            if frame is not None:
                return frame
        elif self._should_hold():
            self.stats.held += 1
            return self._conceal(advance=False)
        return self._conceal()

    def clear(self) -> None:
        """Forget everything buffered (the source is not audible: don't keep its audio)."""
        if self._packets or self._playing:
            self._resync(counted=False)

    @property
    def buffered_ms(self) -> float:
        """Audio waiting to be played, in milliseconds."""
        if self._next_ts is None or self._newest_end is None or not self._packets:
            return 0.0
        return max(0, self._newest_end - self._next_ts) * 1000 / SAMPLE_RATE

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def target_ms(self) -> float:
        return self.target_samples * 1000 / SAMPLE_RATE

    # -- internals -------------------------------------------------------------

    def _retarget(self) -> None:
        if self._min_target_ms == self._max_target_ms:
            return
        target_ms = target_for_jitter(
            self.jitter.percentile_ms(), self._min_target_ms, self._max_target_ms
        )
        self.target_samples = target_ms * SAMPLE_RATE // 1000

    def _should_hold(self) -> bool:
        """An underrun while the jitter asks for more delay than we have: wait a frame.

        Only when nothing newer is buffered: a gap with later packets behind it is a loss
        (or reordering past its slot), and waiting for it would only add delay.
        """
        assert self._next_ts is not None and self._newest_end is not None
        nothing_newer = self._newest_end <= self._next_ts
        return nothing_newer and self.target_samples > self._min_target_ms * SAMPLE_RATE // 1000

    def _shrink_if_above_target(self) -> None:
        """Skip one frame when the buffer never fell to the target for a second."""
        assert self._next_ts is not None and self._newest_end is not None
        buffered = self._newest_end - self._next_ts
        lowest = self._lowest_buffered
        self._lowest_buffered = buffered if lowest is None else min(lowest, buffered)
        if self._pulls % SHRINK_WINDOW_PULLS:
            return
        excess, self._lowest_buffered = self._lowest_buffered - self.target_samples, None
        if excess >= FRAME_SAMPLES:
            self._packets.pop(self._next_ts, None)
            self._next_ts += FRAME_SAMPLES
            self.stats.shrunk += 1

    def _start_if_primed(self) -> bool:
        if self._next_ts is None or self._newest_end is None or not self._packets:
            return False
        if self._newest_end - self._next_ts < self.target_samples:
            return False
        self._playing = True
        return True

    def _trim_to(self, limit: int) -> None:
        """Skip the oldest audio when more than `limit` samples are waiting."""
        if self._next_ts is None or self._newest_end is None:
            return
        if self._newest_end - self._next_ts <= limit:
            return
        new_start = self._newest_end - self.target_samples
        for ts in [t for t in self._packets if t < new_start]:
            del self._packets[ts]
            self.stats.skipped += 1
        self._next_ts = new_start

    def _decode(self, payload: bytes, arrival: float) -> PlayoutFrame | None:
        pcm = decode_pcm(self._decoder, payload)
        if pcm is None:
            self.stats.decode_errors += 1
            return None
        pcm = _fit(pcm)
        slot = self._next_ts
        self._next_ts += FRAME_SAMPLES  # type: ignore[operator]
        self._last_pcm = pcm
        self._concealed_in_row = 0
        self.stats.played += 1
        return PlayoutFrame(pcm=pcm, arrival=arrival, timestamp=_rtp(slot))

    def _conceal(self, *, advance: bool = True) -> PlayoutFrame | None:
        """Fade out a repeat of the last frame; pause the stream if nothing follows."""
        slot = self._next_ts if advance else None
        if advance:
            self._next_ts += FRAME_SAMPLES  # type: ignore[operator]
        self._concealed_in_row += 1
        self.stats.concealed += 1
        if self._concealed_in_row > MAX_CONCEALED and not self._packets:
            self._resync()  # sender paused: re-prime on its next packet
            return None
        gain = CONCEAL_GAIN**self._concealed_in_row
        if self._last_pcm is None or gain < 0.05:
            pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        else:
            pcm = (self._last_pcm.astype(np.float32) * gain).astype(np.int16)
        return PlayoutFrame(pcm=pcm, arrival=None, concealed=True, timestamp=_rtp(slot))

    def _resync(self, *, counted: bool = True) -> None:
        self._packets.clear()
        self._next_ts = None
        self._newest_end = None
        self._playing = False
        self._last_pcm = None
        self._concealed_in_row = 0
        self._lowest_buffered = None
        self.jitter.clear()
        self.stats.resyncs += counted


def _rtp(unwrapped: int | None) -> int | None:
    """An unwrapped timestamp as the 32-bit one on the wire (the unwrapper only adds wraps)."""
    return None if unwrapped is None else unwrapped & 0xFFFFFFFF


def _fit(pcm: np.ndarray) -> np.ndarray:
    """Pad or cut to one tick: browsers send 20 ms packets; anything else is clipped."""
    if pcm.shape[0] == FRAME_SAMPLES:
        return pcm
    out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    n = min(FRAME_SAMPLES, pcm.shape[0])
    out[:n] = pcm[:n]
    return out
