"""The Django side of the room's media player: what this process's media worker is told to
play, and what its reports become.

- **Specs.** The stored playback (``rooms.services.media``) becomes a ``PlaybackSpec`` for
  this process's worker: after each change commits (``apply_stored``, from the thread that
  made it), and from every room update a socket of this process shows (``apply_state``), so
  the worker of every server process with listeners of the room plays it. The same
  playout is posted once: a spec goes only when it differs from the last one posted for
  the room here (the start position aside, which only matters for a new key).
- **Reports.** One subscription per room and process (``RoomPlayer``), however many sockets:
  each report becomes one ``media.progress`` frame, encoded once, for every socket of the
  room here; a playout's end (or failure) is written once per process
  (``media_playout_ended``, which also ignores the other processes' reports of it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from channels.db import database_sync_to_async

from rooms.media.player import FAILED, PLAY_ENDED, PlaybackReport, PlaybackSpec
from rooms.mediafiles.storage import local_path, storage_name_for
from rooms.selectors import MediaState, media_state

log = logging.getLogger(__name__)

ACTIVE = ("playing", "pausing", "loadReady")
Send = Callable[[str], Coroutine[Any, Any, None]]

_posted: dict[int, PlaybackSpec | None] = {}  # room pk -> the last spec posted from here


def spec_for(room_pk: int, media: MediaState, now_ms: int | None = None) -> PlaybackSpec | None:
    """The worker's spec for a media state; None when nothing is to be heard."""
    if media.state not in ACTIVE or not media.media_id or not media.key:
        return None
    name = storage_name_for(room_pk=room_pk, media_id=media.media_id, extension=media.extension)
    return PlaybackSpec(
        key=media.key,
        path=name,  # a storage name until ``_post`` makes it a local path
        start_ms=media.position_now(now_ms if now_ms is not None else int(time.time() * 1000)),
        paused=media.state != "playing",
        repeat=media.repeat,
        volume=media.volume,
    )


def apply_stored(room_pk: int) -> None:
    """After a change committed (any thread): the stored playback to this process's worker."""
    from rooms.models import Room

    room = Room.objects.filter(pk=room_pk).first()
    if room is None:
        return
    _post(room_pk, spec_for(room_pk, media_state(room)))


async def apply_state(room_pk: int, media: MediaState) -> None:
    """From a socket's room update (the event loop): the same, when it is news here."""
    spec = spec_for(room_pk, media)
    if _same(_posted.get(room_pk), spec):
        return
    await database_sync_to_async(_post, thread_sensitive=False)(room_pk, spec)


def _post(room_pk: int, spec: PlaybackSpec | None) -> None:
    from rooms.rtc import media_hub

    if _same(_posted.get(room_pk), spec):
        return
    if spec is None:
        _posted.pop(room_pk, None)  # nothing kept for a room that stopped (or ended)
        RoomPlayer.stopped(room_pk)
    else:
        _posted[room_pk] = spec
        spec = replace(spec, path=str(local_path(spec.path)))
    media_hub().set_playback(room_pk, spec)


def _same(posted: PlaybackSpec | None, spec: PlaybackSpec | None) -> bool:
    if posted is None or spec is None:
        return posted is spec
    return replace(posted, start_ms=0) == replace(spec, start_ms=0)


# --- reports ---------------------------------------------------------------------------------


class RoomPlayer:
    """This process's listener of one room's playout reports, shared by its sockets.

    It outlives the room's last socket here while a playout it was told of runs (the host
    may close the tab; the music goes on), so the end is still written; it goes once the
    playback here stops or ends and no socket is left.
    """

    _rooms: dict[int, RoomPlayer] = {}

    def __init__(self, room: Any) -> None:
        from rooms.rtc import media_hub

        self.room = room
        self.loop = asyncio.get_running_loop()
        self.sockets: dict[object, Send] = {}
        self._ended: set[str] = set()  # keys whose end this process wrote (or is writing)
        self._last_frame = ""
        self._unsubscribe = media_hub().subscribe_playback(room.pk, self._on_report)

    @classmethod
    def join(cls, room: Any, owner: object, send: Send) -> None:
        player = cls._rooms.get(room.pk)
        if player is None:
            player = cls._rooms[room.pk] = cls(room)
        player.sockets[owner] = send

    @classmethod
    def leave(cls, room_pk: int, owner: object) -> None:
        player = cls._rooms.get(room_pk)
        if player is None:
            return
        player.sockets.pop(owner, None)
        player._let_go_if_idle()

    @classmethod
    def stopped(cls, room_pk: int) -> None:
        """Nothing plays here any more (any thread): a player without sockets goes."""
        player = cls._rooms.get(room_pk)
        if player is None:
            return
        try:
            player.loop.call_soon_threadsafe(player._let_go_if_idle)
        except RuntimeError:  # its loop is gone (a test's, or a stopped server's): so is it
            cls._rooms.pop(room_pk, None)

    def _let_go_if_idle(self) -> None:
        if (
            self.sockets
            or self.room.pk in _posted
            or RoomPlayer._rooms.get(self.room.pk) is not self
        ):
            return
        self._unsubscribe()
        del RoomPlayer._rooms[self.room.pk]

    def _on_report(self, report: PlaybackReport) -> None:
        posted = _posted.get(self.room.pk)
        if posted is None or report.key != posted.key:
            return  # an older playout's last words
        if report.state in (PLAY_ENDED, FAILED):
            self._end(report)
            return
        if report.duration_ms == 0:
            return  # the decoder has not opened the file yet: nothing to show
        frame = progress_frame(report)
        if frame != self._last_frame:
            self._last_frame = frame
            for send in list(self.sockets.values()):
                send_soon(send(frame))

    def _end(self, report: PlaybackReport) -> None:
        if report.key in self._ended:
            return
        self._ended.add(report.key)
        error = report.error if report.state == FAILED else ""
        from rooms.services.media import media_playout_ended

        ending = database_sync_to_async(media_playout_ended, thread_sensitive=False)
        send_soon(ending(room=self.room, key=report.key, error=error))


def progress_frame(report: PlaybackReport) -> str:
    return json.dumps(
        {
            "type": "media.progress",
            "position": report.position_ms,
            "totalDuration": report.duration_ms,
            "state": report.state,
        }
    )


def send_soon(sending: Coroutine[Any, Any, Any]) -> None:
    """A send that nothing awaits (levels, media notices, a playout's end): the socket may
    have closed by the time it runs, which is no error worth a traceback."""
    asyncio.ensure_future(sending).add_done_callback(_dropped_if_closed)


def _dropped_if_closed(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a frame was not sent: %r", task.exception())
