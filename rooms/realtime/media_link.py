"""One socket's part in the media plane (``rooms.rtc.media_hub()``): its peer's offer, the
levels and peer-closed notices it shows, its local mutes (the media player's source among
them: ``media.muteLocal``), who the room's mixer lets through, the media player's progress
(``rooms.player``), the SEIs it sends and gets (``rooms.media.sei``), and the peer's release
when the user goes (at once, or after the seat's grace period)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from channels.db import database_sync_to_async

from rooms import player
from rooms.media import MediaError
from rooms.media.player import MEDIA_SOURCE_ID
from rooms.media.sei import Sei, SeiRelease
from rooms.player import send_soon
from rooms.rtc import audible_user_ids, media_hub
from rooms.selectors import MediaState, is_seated, room_state
from rooms.services import ServiceError

log = logging.getLogger(__name__)

PEER_CLOSED_MESSAGES = {
    "timeout": "The audio connection did not complete in time.",
    "failed": "The audio connection was lost.",
    "worker_lost": "The audio server was lost; reconnecting.",
    "moved": "Moving your audio to the stage.",
}


class MediaLink:
    def __init__(
        self, room: Any, user_id: str, send: Callable[[str], Coroutine[Any, Any, None]]
    ) -> None:
        self.room, self.user_id, self._send = room, user_id, send
        self.local_mutes: frozenset[str] = frozenset()
        # Who the room's mixer hears, and whether the player plays, by the newest state this
        # socket showed: an SEI's sender must be heard (``services.sei_check_sender``).
        self.audible: frozenset[str] = frozenset()
        self.media_playing = False
        self._levels_sent: str | None = None  # the last levels frame this socket got
        self._moving = False  # told to offer again, to the room's mixer (scale-out mode)
        self._seat_checked = False  # seated, and whether the peer is on a relay was looked at
        self._unsubscribe: list[Callable[[], None]] = []

    def attach(self) -> None:
        hub = media_hub()
        hub.cancel_release(self.room.pk, self.user_id)  # back within the grace period: same peer
        self._unsubscribe = [
            hub.subscribe_levels(self.room.pk, self._on_levels),
            hub.subscribe_peer_closed(self.room.pk, self._on_peer_closed),
            hub.subscribe_sei(self.room.pk, self._on_sei),
        ]
        player.RoomPlayer.join(self.room, self, self._send)
        self._unsubscribe.append(lambda: player.RoomPlayer.leave(self.room.pk, self))

    def detach(self, *, release_after: float | None) -> None:
        """The socket is gone. The audio goes on while it reconnects; the peer closes with
        the seat (``release_after`` seconds), or not at all (``None``: released already)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if release_after is not None:
            media_hub().release_later(self.room.pk, self.user_id, release_after)

    async def release(self) -> None:
        await media_hub().release(self.room.pk, self.user_id)

    async def offer(self, sdp: str) -> str:
        hub = media_hub()
        listener = False
        if getattr(hub, "places_listeners", False):
            # Scale-out: a seated user's peer goes to the room's mixer, anyone else's to a
            # relay (rooms/media/remote.py).
            seated = await database_sync_to_async(is_seated)(self.room, self.user_id)
            listener = not seated
        self._moving = False
        try:
            answer = await hub.offer(self.room.pk, self.user_id, sdp, listener=listener)
        except MediaError as exc:
            raise ServiceError(f"media_{exc.code}", exc.message) from exc
        state = await database_sync_to_async(room_state)(self.room)
        hub.set_audible(self.room.pk, audible_user_ids(state), state.revision)
        hub.set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return answer

    def set_audible(
        self, audible: frozenset[str], revision: int, seated: frozenset[str] | None = None
    ) -> None:
        self.audible = audible
        hub = media_hub()
        hub.set_audible(self.room.pk, audible, revision)
        if seated is None or not getattr(hub, "places_listeners", False):
            return
        if self.user_id not in seated:
            self._seat_checked = False
        elif not self._seat_checked and not self._moving:
            # Just seated (or seated when this socket came): once, is the peer on a relay?
            self._seat_checked = True
            send_soon(self._move_if_on_relay(hub))

    async def _move_if_on_relay(self, hub: Any) -> None:
        """A relay never carries a voice: a listener who took a seat offers again, and the
        new offer lands on the room's mixer."""
        if await hub.on_relay(self.room.pk, self.user_id) and not self._moving:
            self._moving = True
            self._on_peer_closed(self.user_id, "moved")

    async def refresh_audible(self) -> None:
        """Who is heard by the room's state now, for this socket and the mixer: a change this
        socket has not shown yet (a microphone just turned on) may already be committed."""
        state = await database_sync_to_async(room_state)(self.room)
        self.set_audible(frozenset(audible_user_ids(state)), state.revision)

    def mute_locally(self, user_id: str, muted: bool) -> list[str]:
        """The user IDs this socket no longer hears (the media player's source aside)."""
        mutes = self.local_mutes
        self.local_mutes = mutes | {user_id} if muted else mutes - {user_id}
        media_hub().set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return sorted(m for m in self.local_mutes if m != MEDIA_SOURCE_ID)

    @property
    def media_muted(self) -> bool:
        return MEDIA_SOURCE_ID in self.local_mutes

    def mute_media(self, muted: bool) -> str:
        """``media.muteLocal``: this socket's mix without the media player; the frame that
        says so."""
        self.mute_locally(MEDIA_SOURCE_ID, muted)
        return media_mute_frame(muted)

    async def show_playback(self, media: MediaState) -> None:
        """A state this socket shows: this process's worker plays what it says."""
        self.media_playing = media.state == "playing"
        await player.apply_state(self.room.pk, media)

    def send_sei(self, sei: Sei, capture_ms: float | None) -> None:
        """To the mixer, which releases it with the audio captured at ``capture_ms``."""
        media_hub().send_sei(self.room.pk, sei, capture_ms)

    def _on_sei(self, release: SeiRelease) -> None:
        """The SEIs of one tick: everyone's but this user's own."""
        frame = sei_frames(self.room.room_id, release, self.user_id)
        if frame is not None:
            send_soon(self._send(frame))

    def _on_levels(self, levels: dict[str, float]) -> None:
        """Called ~8 times a second: never block. A frame goes out only when what the page
        shows changes, so a steady ring, like steady silence, costs no frames."""
        frame = levels_frame(levels)
        if frame == self._levels_sent or (self._levels_sent is None and not any(levels.values())):
            return
        self._levels_sent = frame
        send_soon(self._send(frame))

    def _on_peer_closed(self, user_id: str, reason: str) -> None:
        """The server closed this user's media connection on its own: say so, so the page
        offers again instead of waiting for its own side to notice."""
        if user_id != self.user_id:
            return
        message = PEER_CLOSED_MESSAGES.get(reason, "The audio connection closed.")
        send_soon(
            self._send(json.dumps({"type": "rtc.closed", "reason": reason, "message": message}))
        )


class _LevelsFrames:
    """The frame for one levels report, encoded once for all the sockets it reaches (the hub
    hands every listener of a room the same dict)."""

    def __init__(self) -> None:
        self._last: tuple[dict[str, float] | None, str] = (None, "")

    def __call__(self, levels: dict[str, float]) -> str:
        if self._last[0] is not levels:
            # Two decimals: what a ring can show; finer would only make steady levels "change".
            frame = {"type": "levels", "levels": {uid: round(v, 2) for uid, v in levels.items()}}
            self._last = (levels, json.dumps(frame))
        return self._last[1]


levels_frame = _LevelsFrames()


class _SeiFrames:
    """The ``sei`` frame of one release, encoded once for all the sockets it reaches (its
    senders' own sockets get it without their own SEIs)."""

    def __init__(self) -> None:
        self._release: SeiRelease | None = None
        self._frames: dict[str, str | None] = {}

    def __call__(self, room_id: str, release: SeiRelease, user_id: str) -> str | None:
        if release is not self._release:
            self._release, self._frames = release, {}
        key = user_id if any(sei.sender_id == user_id for sei in release.seis) else ""
        if key not in self._frames:
            items = [
                {
                    "rtpTimestamp": rtp_timestamp,
                    "typeIdentifier": "custom",  # the seed's ZegoUIKitInnerSEIType.custom
                    "senderID": sei.sender_id,
                    "sei": json.loads(sei.data),
                    "streamID": f"{room_id}_{sei.sender_id}_{sei.stream_type}",
                    "streamType": sei.stream_type,
                }
                for rtp_timestamp, sei in release.items
                if sei.sender_id != key
            ]
            frame = {"type": "sei", "items": items}
            self._frames[key] = json.dumps(frame) if items else None
        return self._frames[key]


sei_frames = _SeiFrames()


def media_mute_frame(muted: bool) -> str:
    return json.dumps({"type": "media.mute", "mute": muted})
