"""This process's liveness record and its presence sweeps, on the server's event loop.

``start()`` registers the process (before its first socket is accepted) and sweeps once;
then every ``LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS`` it refreshes its heartbeat and sweeps
again: members online through a process that is gone go offline, and seats held past the
grace period are freed (``rooms.services.presence``). ``stop()`` forgets the process, so the
members it may still hold are repaired by the next sweep anywhere. ``rooms.lifecycle``
calls both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from rooms.services.presence import (
    playbacks_pause_after_restart,
    presence_repair,
    process_forget,
    process_heartbeat,
    process_register,
    seats_release_due,
)

log = logging.getLogger(__name__)


def _db(function: Callable[..., Any]) -> Callable[..., Any]:
    # Not the one thread the sockets' queries share: a busy room must not delay heartbeats.
    return database_sync_to_async(function, thread_sensitive=False)


class Presence:
    def __init__(self, *, on_forgotten: Callable[[], Any] | None = None) -> None:
        self.channel_prefix = ""
        # Called when this process finds its own record gone (it was taken for dead, its
        # members taken offline): its sockets should rejoin.
        self._on_forgotten = on_forgotten
        self._loop_task: asyncio.Task | None = None
        self._release_timers: set[asyncio.Task] = set()

    async def start(self) -> None:
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS names no default layer"
        channel = await layer.new_channel()
        self.channel_prefix = channel.partition("!")[0]
        await _db(process_register)(channel_prefix=self.channel_prefix)
        paused = await _db(playbacks_pause_after_restart)(me=self.channel_prefix)
        if paused:
            log.info("presence: %d media player(s) paused where they were", paused)
        self._loop_task = asyncio.create_task(self._beat_and_sweep())
        log.info("presence: process %s registered", self.channel_prefix)

    async def stop(self) -> None:
        for task in [self._loop_task, *self._release_timers]:
            if task is not None:
                task.cancel()
        if self.channel_prefix:
            await _db(process_forget)(channel_prefix=self.channel_prefix)

    async def sweep(self) -> None:
        rooms = await _db(presence_repair)(me=self.channel_prefix)
        if rooms:
            # The disconnected members' seats go once their grace period is over, as a
            # socket's own disconnect timer would free them.
            self._release_later(settings.LIVEAUDIO_SEAT_GRACE_SECONDS + 0.05)
        await _db(seats_release_due)()

    async def _beat_and_sweep(self) -> None:
        interval = settings.LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS
        while True:
            try:
                await self._beat()
                await self.sweep()
            except Exception:  # the database may be away for a while: try again next time
                log.exception("presence: heartbeat or sweep failed")
            await asyncio.sleep(interval)

    async def _beat(self) -> None:
        if await _db(process_heartbeat)(channel_prefix=self.channel_prefix):
            return
        log.warning("presence: this process was taken for dead; registering again")
        await _db(process_register)(channel_prefix=self.channel_prefix)
        if self._on_forgotten is not None:
            await self._on_forgotten()

    def _release_later(self, delay: float) -> None:
        async def release() -> None:
            await asyncio.sleep(delay)
            try:
                await _db(seats_release_due)()
            except Exception:  # the next sweep frees them
                log.exception("presence: releasing seats failed")

        task = asyncio.create_task(release())
        self._release_timers.add(task)
        task.add_done_callback(self._release_timers.discard)
