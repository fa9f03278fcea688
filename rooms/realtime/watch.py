"""No room update is lost for good: sockets behind the room's revision are brought up to date.

An update can fail to reach a socket: the channel layer drops a message for a channel that
is full, a Redis outage loses a broadcast whose change had committed. Each server process
therefore looks at the revisions of its rooms (one query for all of them) every
``INTERVAL``; a socket that is idle (nothing queued) yet behind the room's revision on two
looks in a row gets the current state, read and rendered once for all such sockets of the
room, through its outbox like any update.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from rooms.events import room_update_parts
from rooms.models import Room

if TYPE_CHECKING:
    from rooms.realtime.consumer import RoomConsumer

log = logging.getLogger(__name__)

INTERVAL = 0.5


class RevisionWatch:
    """The sockets of this process, by room, and the task that looks at their revisions."""

    def __init__(self) -> None:
        self.rooms: dict[int, set[RoomConsumer]] = {}
        self._behind: set[RoomConsumer] = set()  # behind on the last look
        self._task: asyncio.Task[None] | None = None

    def follow(self, socket: RoomConsumer) -> None:
        self.rooms.setdefault(socket.room.pk, set()).add(socket)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def forget(self, socket: RoomConsumer) -> None:
        room = getattr(socket, "room", None)
        if room is not None and room.pk in self.rooms:
            sockets = self.rooms[room.pk]
            sockets.discard(socket)
            if not sockets:
                del self.rooms[room.pk]
        self._behind.discard(socket)

    async def _run(self) -> None:
        while self.rooms:
            await asyncio.sleep(INTERVAL)
            try:
                await self.look()
            except Exception:
                log.exception("the revision watch failed; trying again")

    async def look(self) -> None:
        revisions = await database_sync_to_async(_revisions)(list(self.rooms))
        behind = {
            socket
            for pk, sockets in self.rooms.items()
            for socket in sockets
            if socket.outbox.idle and socket.outbox.revision < revisions.get(pk, -1)
        }
        stale = behind & self._behind  # behind on two looks in a row
        self._behind = behind - stale
        for pk in {socket.room.pk for socket in stale}:
            message = await database_sync_to_async(_current)(pk)
            for socket in stale:
                if socket.room.pk == pk:
                    socket.outbox.room_update(message)


def _revisions(room_pks: list[int]) -> dict[int, int]:
    return dict(Room.objects.filter(pk__in=room_pks).values_list("pk", "revision"))


def _current(room_pk: int) -> dict:
    room = Room.objects.select_related("app").get(pk=room_pk)
    return {"type": "room.update", **room_update_parts(room), "events": []}


# One watch per event loop (a server has one; tests start a loop per test).
_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RevisionWatch] = (
    weakref.WeakKeyDictionary()
)


def _watch() -> RevisionWatch:
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = RevisionWatch()
    return watch


def follow(socket: RoomConsumer) -> None:
    _watch().follow(socket)


def forget(socket: RoomConsumer) -> None:
    _watch().forget(socket)
