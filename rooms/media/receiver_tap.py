"""Taking raw Opus packets out of aiortc's RTCRtpReceiver.

Options considered (aiortc 1.16):
- read `RemoteStreamTrack.recv()`: already decoded, but through aiortc's
  JitterBuffer (80 ms prefetch, and a loss costs +200 ms for good);
- override `RTCRtpReceiver._handle_rtp_packet`: we would have to re-implement
  its RTCP statistics, RTX unwrapping and SSRC bookkeeping;
- **replace the receiver's jitter buffer** (chosen): `_handle_rtp_packet` does all
  that bookkeeping, depayloads, then hands each packet to the jitter buffer's
  `add(packet)` and decodes only what that returns. A stand-in whose `add()`
  forwards the packet to our `PlayoutBuffer` and returns "no frame" keeps every
  bit of aiortc's RTP/RTCP handling, and aiortc's decoder thread simply never
  gets work. The replacement itself is `patches.replace_jitter_buffer`.

The tap also keeps the speaker's `SenderClock` (for SEIs): each packet's RTP timestamp, and
each RTCP sender report, seen on its way into aiortc's own handler, which still runs.
"""

from __future__ import annotations

import time

from aiortc import RTCRtpReceiver
from aiortc.rtp import AnyRtcpPacket, RtcpSrPacket, RtpPacket

from .patches import replace_jitter_buffer
from .playout import PlayoutBuffer
from .sei import SenderClock


class PlayoutTap:
    """Stands in for aiortc's JitterBuffer and feeds a `PlayoutBuffer` instead."""

    def __init__(self, playout: PlayoutBuffer, clock: SenderClock) -> None:
        self.playout = playout
        self.clock = clock

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        """aiortc's JitterBuffer API: (send a PLI?, complete frame to decode)."""
        if packet.payload:
            self.playout.push(packet.payload, packet.timestamp, time.monotonic())
            self.clock.packet(packet.timestamp)
        return False, None


def tap_receiver(
    receiver: RTCRtpReceiver, playout: PlayoutBuffer, clock: SenderClock
) -> PlayoutTap:
    """Route `receiver`'s inbound RTP to `playout`, and its timing to `clock`; call before
    media flows."""
    tap = PlayoutTap(playout, clock)
    replace_jitter_buffer(receiver, tap)
    handle_rtcp = receiver._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            clock.sender_report(packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await handle_rtcp(packet)

    # The DTLS transport's router looks the handler up on each packet: an instance attribute
    # is found before the class's method.
    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    return tap
