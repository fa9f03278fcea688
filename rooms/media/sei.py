"""SEI: a small JSON object that travels with a speaker's audio, or with the media player's.

The seed's `sendSEI` puts its data into the video stream itself, so whoever plays the stream
gets it at the frame it came with. Our audio is mixed on the server, so the SEI goes beside
it, and keeps its place in time like this:

1. **The browser** stamps the SEI with the moment it was sent (`captureMs`, its wall clock in
   milliseconds): that is the capture time of the audio it is sending then.
2. **The server** puts that moment on the speaker's RTP timeline with the speaker's own RTCP
   sender reports, which map the browser's wall clock (NTP) to its RTP timestamps
   (`SenderClock`). Before the first report (browsers send one every few seconds), or when
   the two clocks disagree wildly, the SEI belongs to the newest audio that has arrived.
3. **The mixer** holds the SEI until it pulls the frame of that speaker's audio that holds
   this RTP time, and releases it with that tick (`SeiRelease`), stamped with the tick's
   outbound RTP timestamp: the same for every listener, since every mix of a room shares one
   timeline and one random origin.
4. **The listener's page** holds it until its receiver has played that RTP timestamp out, and
   only then emits it.

A media SEI (`streamType` "media", from whoever controls the player) belongs to the player's
audio of the next tick. Whoever sent an SEI never gets it back, and a listener who muted the
speaker locally still gets it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .codec import FRAME_SAMPLES, SAMPLE_RATE

RTP_MASK = 0xFFFFFFFF
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
# A sender report's mapping is trusted this far from where the speaker's audio is: a browser
# whose clock jumped, or a report from another stream, must not hold an SEI back for long.
MAX_AHEAD_SAMPLES = SAMPLE_RATE // 2
MAX_BEHIND_SAMPLES = 5 * SAMPLE_RATE
# The longest an SEI waits for its audio (a speaker whose packets stopped): then it goes
# with the next tick, late rather than lost.
MAX_HOLD_TICKS = 50
MAX_PENDING = 64  # per speaker; an older SEI is dropped first
# A browser's reports each place its audio a few milliseconds differently (Chromium's from
# 10 ms capture chunks: seen here to move by up to 28 ms from one report to the next), so the
# mapping is the median of the last few. Over their ~25 s the two clocks drift apart by far
# less than a millisecond.
REPORTS_KEPT = 5


@dataclass(frozen=True)
class Sei:
    sender_id: str
    stream_type: str  # "main": a speaker's microphone; "media": the media player
    data: str  # the JSON object's text, checked where it came in


@dataclass(frozen=True)
class SeiRelease:
    """SEIs released with one tick, each with the outbound RTP timestamp of its moment (the
    tick's own plus where in its 20 ms the SEI's audio is): a listener emits each once it has
    played that far."""

    items: tuple[tuple[int, Sei], ...]

    @property
    def seis(self) -> tuple[Sei, ...]:
        return tuple(sei for _, sei in self.items)


SeiHook = Callable[[SeiRelease], None]


def signed_distance(a: int, b: int) -> int:
    """`a - b` between two 32-bit RTP timestamps, across a wrap-around."""
    return ((a - b + (1 << 31)) & RTP_MASK) - (1 << 31)


class SenderClock:
    """A speaker's wall clock -> their RTP timestamps, from RTCP sender reports and packets."""

    def __init__(self) -> None:
        # The last few reports: (unix seconds, RTP timestamp) of the same moment.
        self._reports: deque[tuple[float, int]] = deque(maxlen=REPORTS_KEPT)
        self._newest: int | None = None  # the newest packet's RTP timestamp

    @property
    def reports(self) -> int:
        return len(self._reports)

    def sender_report(self, ntp: int, rtp_timestamp: int) -> None:
        self._reports.append((ntp / (1 << 32) - NTP_EPOCH_OFFSET, rtp_timestamp))

    def packet(self, rtp_timestamp: int) -> None:
        if self._newest is None or signed_distance(rtp_timestamp, self._newest) > 0:
            self._newest = rtp_timestamp

    def timestamp_at(self, capture_ms: float | None) -> int | None:
        """The RTP timestamp of the audio captured at `capture_ms`, or of the newest audio
        (the end of its newest packet); None before any audio came."""
        if self._newest is None:
            return None
        newest_end = (self._newest + FRAME_SAMPLES) & RTP_MASK
        if capture_ms is None or not self._reports:
            return newest_end
        # Each report's placement, as a distance from the newest audio (no wrap-around).
        placed = sorted(
            signed_distance(rtp + round((capture_ms / 1000 - at) * SAMPLE_RATE), newest_end)
            for at, rtp in self._reports
        )
        ahead = placed[len(placed) // 2]
        mapped = (newest_end + ahead) & RTP_MASK
        if ahead > MAX_AHEAD_SAMPLES or ahead < -MAX_BEHIND_SAMPLES:
            return newest_end
        return mapped


@dataclass
class _Pending:
    sei: Sei
    target: int | None  # the source's RTP timestamp it belongs to; None: its next frame
    ticks: int = 0


class SeiQueue:
    """One source's SEIs waiting for their audio to be mixed (the mixer owns one per source)."""

    def __init__(self) -> None:
        self._pending: deque[_Pending] = deque(maxlen=MAX_PENDING)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, sei: Sei, target: int | None) -> None:
        self._pending.append(_Pending(sei, target))

    def due(self, frame_timestamp: int | None, *, pulled: bool) -> list[tuple[int, Sei]]:
        """The SEIs whose audio this tick holds, each with the offset of its moment in the
        tick's 20 ms: in the frame starting at `frame_timestamp`, in any frame at all
        (`pulled`) for those without a target (offset 0), and whatever waited too long."""
        released: list[tuple[int, Sei]] = []
        kept: deque[_Pending] = deque(maxlen=MAX_PENDING)
        for item in self._pending:
            item.ticks += 1
            offset = 0
            if item.target is None:
                due = pulled
            elif frame_timestamp is None:
                due = False
            else:
                into = signed_distance(item.target, frame_timestamp)
                due = into < FRAME_SAMPLES
                offset = min(max(into, 0), FRAME_SAMPLES - 1)
            if due or item.ticks >= MAX_HOLD_TICKS:
                released.append((offset if due else 0, item.sei))
            else:
                kept.append(item)
        self._pending = kept
        return released
