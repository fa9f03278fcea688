"""The per-participant outbound track: pre-encoded Opus packets from the mixer.

aiortc's RTCRtpSender checks what `recv()` returns: an `av.Frame` is encoded,
an `av.Packet` is only packetised (`OpusEncoder.pack`, which turns
`packet.pts` in `packet.time_base` into the RTP timestamp). Returning packets is
what lets one encoded mix go to many listeners untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

DEFAULT_MAX_QUEUED = 5  # 100 ms: a stuck peer loses old audio instead of lagging


class MixedAudioTrack(MediaStreamTrack):
    """Hands a listener's mix to its RTCRtpSender, one 20 ms packet per `recv()`.

    The queue is bounded and drops its oldest packet, so a slow peer only hurts
    itself: the mixer never waits for anyone.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        on_sent: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self._queue: deque[tuple[av.Packet, float | None]] = deque()
        self._max_queued = max_queued
        self._ready = asyncio.Event()
        self._on_sent = on_sent
        self.queued = 0
        self.sent = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Packets queued and not yet taken by the sender."""
        return len(self._queue)

    def put(self, packet: av.Packet, arrival: float | None = None) -> None:
        """Queue a packet; `arrival` is when its oldest source audio reached us."""
        if self.readyState != "live":
            return
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((packet, arrival))
        self.queued += 1
        self._ready.set()

    async def recv(self) -> av.Packet:  # type: ignore[override]
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
        self._ready.set()  # wake a pending recv() so the sender loop can exit
