"""One socket's part in the media plane (``rooms.rtc.media_hub()``): its peer's offer, the
levels and peer-closed notices it shows, its local mutes, who the room's mixer lets through,
and the peer's release when the user goes (at once, or after the seat's grace period)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from channels.db import database_sync_to_async

from rooms.media import MediaError
from rooms.rtc import audible_user_ids, media_hub
from rooms.selectors import room_state
from rooms.services import ServiceError

log = logging.getLogger(__name__)

PEER_CLOSED_MESSAGES = {
    "timeout": "The audio connection did not complete in time.",
    "failed": "The audio connection was lost.",
}


class MediaLink:
    def __init__(
        self, room: Any, user_id: str, send: Callable[[str], Coroutine[Any, Any, None]]
    ) -> None:
        self.room, self.user_id, self._send = room, user_id, send
        self.local_mutes: frozenset[str] = frozenset()
        self._levels_sent: str | None = None  # the last levels frame this socket got
        self._unsubscribe: list[Callable[[], None]] = []

    def attach(self) -> None:
        hub = media_hub()
        hub.cancel_release(self.room.pk, self.user_id)  # back within the grace period: same peer
        self._unsubscribe = [
            hub.subscribe_levels(self.room.pk, self._on_levels),
            hub.subscribe_peer_closed(self.room.pk, self._on_peer_closed),
        ]

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
        try:
            answer = await hub.offer(self.room.pk, self.user_id, sdp)
        except MediaError as exc:
            raise ServiceError(f"media_{exc.code}", exc.message) from exc
        state = await database_sync_to_async(room_state)(self.room)
        hub.set_audible(self.room.pk, audible_user_ids(state), state.revision)
        hub.set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return answer

    def set_audible(self, audible: frozenset[str], revision: int) -> None:
        media_hub().set_audible(self.room.pk, audible, revision)

    def mute_locally(self, user_id: str, muted: bool) -> list[str]:
        mutes = self.local_mutes
        self.local_mutes = mutes | {user_id} if muted else mutes - {user_id}
        media_hub().set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return sorted(self.local_mutes)

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


def send_soon(sending: Coroutine[Any, Any, None]) -> None:
    """A send that nothing awaits (levels, media notices): the socket may have closed by
    the time it runs, which is no error worth a traceback."""
    asyncio.ensure_future(sending).add_done_callback(_dropped_if_closed)


def _dropped_if_closed(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a frame was not sent: %r", task.exception())
