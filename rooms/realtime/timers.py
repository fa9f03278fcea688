"""Timers of a room, owned by the room (in this process) and cancelled when it ends.

A timer runs a service later (free stale seats after the grace period, expire requests and
invitations) in a thread. A room that ended meanwhile is no error: its services refuse with
``room_ended`` and the timer stops quietly. Any other failure is logged with its traceback
here, so no task ends with an exception nobody retrieves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from channels.db import database_sync_to_async

from rooms.services import ServiceError

log = logging.getLogger(__name__)


class RoomTimers:
    """The pending timers of one room in this process."""

    _rooms: ClassVar[dict[int, RoomTimers]] = {}

    def __init__(self, room_pk: int) -> None:
        self.room_pk = room_pk
        self.tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, room_pk: int) -> RoomTimers:
        timers = cls._rooms.get(room_pk)
        if timers is None:
            timers = cls._rooms[room_pk] = cls(room_pk)
        return timers

    @classmethod
    def pending(cls) -> set[asyncio.Task[None]]:
        """Every room's pending timers on this event loop (tests wait for them; a test's
        loop closes with its timers, which then never finish and are let go here)."""
        loop = asyncio.get_running_loop()
        for timers in list(cls._rooms.values()):
            timers.tasks = {t for t in timers.tasks if t.get_loop() is loop and not t.done()}
        return {task for timers in cls._rooms.values() for task in timers.tasks}

    @classmethod
    def room_ended(cls, room_pk: int) -> None:
        timers = cls._rooms.pop(room_pk, None)
        if timers is not None:
            for task in timers.tasks:
                task.cancel()

    def after(
        self, delay: float, service: Callable[..., Any], *, slow: bool = False, **kwargs: Any
    ) -> None:
        """``slow``: the service may take long (a download), so it runs on a thread of its
        own rather than the one the sockets' queries share."""
        task = asyncio.get_running_loop().create_task(self._run(delay, service, kwargs, slow))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    async def _run(
        self, delay: float, service: Callable[..., Any], kwargs: dict, slow: bool
    ) -> None:
        await asyncio.sleep(delay)
        try:
            await database_sync_to_async(service, thread_sensitive=not slow)(**kwargs)
        except ServiceError as exc:
            if exc.code != "room_ended":
                log.warning("timer %s refused: %s", service.__name__, exc.message)
        except Exception:
            log.exception("timer %s failed", service.__name__)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not self.tasks and RoomTimers._rooms.get(self.room_pk) is self:
            del RoomTimers._rooms[self.room_pk]
