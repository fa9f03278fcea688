"""MediaPeer: one participant's RTCPeerConnection on the server, offer to close.

The browser offers one sendrecv audio transceiver. What it sends goes, packet
by packet, into a `PlayoutBuffer` that the room's mixer pulls from; what it
receives is its own `MixedAudioTrack` from the mixer. Whether its audio is
heard is not this class's business: the mixer only mixes audible participants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InternalError, InvalidAccessError, OperationError

from .errors import MediaError
from .ice import rtc_configuration
from .outbound import MixedAudioTrack, use_direct_send
from .patches import install_peer_fixes, use_worker_certificate
from .playout import PlayoutBuffer
from .receiver_tap import tap_receiver
from .sei import SenderClock

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 15.0
_SDP_ERRORS = (ValueError, KeyError, IndexError, InternalError, InvalidAccessError, OperationError)


class PeerMixer(Protocol):
    """What a peer needs of its room's media: a `RoomMixer`, or a relay's `RelayRoom`."""

    def new_track(self) -> MixedAudioTrack: ...

    def add_participant(
        self, pid: str, track: MixedAudioTrack | None = None
    ) -> MixedAudioTrack: ...

    def attach_source(self, pid: str, source: PlayoutBuffer) -> None: ...

    def remove_participant(self, pid: str, *, track: MixedAudioTrack | None = None) -> None: ...


def validate_offer(sdp: str, type: str) -> None:
    """Refuse anything but an SDP offer with exactly one audio section (and no video)."""
    if type != "offer":
        raise MediaError("bad_type", f"expected an SDP offer, got {type!r}")
    if not isinstance(sdp, str) or not sdp.lstrip().startswith("v=0"):
        raise MediaError("bad_sdp", "not an SDP document")
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises whatever it trips on
        raise MediaError("bad_sdp", f"unreadable SDP: {exc}") from exc
    kinds = [media.kind for media in description.media]
    if "audio" not in kinds:
        raise MediaError("no_audio", "the offer has no audio section")
    if kinds.count("audio") > 1 or "video" in kinds:
        raise MediaError("unsupported_media", f"expected one audio section, got {kinds}")
    # aiortc answers an offer without these, then fails later in a background task (no
    # a=fingerprint: an AssertionError nobody retrieves) or with an AttributeError (no
    # a=setup): refuse them here, with the same code as any other unusable SDP.
    audio = next(media for media in description.media if media.kind == "audio")
    if audio.dtls is None or not audio.dtls.fingerprints:
        raise MediaError("bad_sdp", "the offer has no DTLS fingerprint or setup role")


class MediaPeer:
    """The server end of one participant's WebRTC connection."""

    def __init__(
        self,
        pid: str,
        mixer: PeerMixer,
        *,
        ice_servers: Iterable[RTCIceServer] = (),
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        playout_target_ms: int | None = None,  # None: adapts to the stream's jitter
        on_closed: Callable[[MediaPeer], None] | None = None,
    ) -> None:
        install_peer_fixes()
        self.pid = pid
        self.playout = PlayoutBuffer(target_ms=playout_target_ms)
        self.clock = SenderClock()  # the browser's wall clock on its RTP timeline (SEIs)
        self.timed_out = False
        self._mixer = mixer
        self._connect_timeout = connect_timeout
        self._on_closed = on_closed
        self._pc = RTCPeerConnection(rtc_configuration(ice_servers))
        use_worker_certificate(self._pc)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._track: MixedAudioTrack | None = None
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._watchdog: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def track(self) -> MixedAudioTrack | None:
        return self._track

    async def accept_offer(self, sdp: str, type: str = "offer") -> RTCSessionDescription:
        """Answer the browser's offer; raises MediaError for anything unusable."""
        if self._closing:
            raise MediaError("closed", "this connection is closed")
        if self._pc.remoteDescription is not None:
            raise MediaError("already_negotiated", "renegotiation is not supported")
        validate_offer(sdp, type)
        try:
            return await self._negotiate(RTCSessionDescription(sdp=sdp, type=type))
        except _SDP_ERRORS as exc:
            await self.close()
            raise MediaError("bad_sdp", f"offer rejected: {exc}") from exc

    async def _negotiate(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        await self._pc.setRemoteDescription(offer)
        transceiver = next(t for t in self._pc.getTransceivers() if t.kind == "audio")
        tap_receiver(transceiver.receiver, self.playout, self.clock)
        track = self._mixer.new_track()
        sender = self._pc.addTrack(track)  # reuses the offered transceiver: sendrecv
        use_direct_send(sender, track)
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        # Only now, with an answer: a reconnecting participant's new track replaces the
        # previous peer's, which a failed offer must not cost them.
        self._track = self._mixer.add_participant(self.pid, track)
        self._mixer.attach_source(self.pid, self.playout)
        self._watchdog = asyncio.get_running_loop().create_task(
            self._close_unless_connected(), name=f"MediaPeer({self.pid}).watchdog"
        )
        return self._pc.localDescription

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self) -> None:
        """Release the connection, the mixer slot and every task; idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        await self._stop_watchdog()
        if self._track is not None:
            self._mixer.remove_participant(self.pid, track=self._track)
        await self._pc.close()
        self._closed.set()
        if self._on_closed is not None:
            self._on_closed(self)

    async def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None or watchdog is asyncio.current_task():
            return
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog

    async def _close_unless_connected(self) -> None:
        """A browser that never completes ICE must not hold a peer forever."""
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout)
        except TimeoutError:
            logger.info("peer %s: no connection after %ss", self.pid, self._connect_timeout)
            self.timed_out = True
            await self.close()
            return
        self._watchdog = None

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed") and not self._closing:
            logger.info("peer %s: connection %s", self.pid, state)
            self._close_task = asyncio.get_running_loop().create_task(
                self.close(), name=f"MediaPeer({self.pid}).close"
            )
