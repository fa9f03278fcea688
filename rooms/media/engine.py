"""MediaEngine: the process's `MediaHub` on a thread and event loop of its own.

Why a thread: the mixer's 20 ms clock used to share daphne's event loop with every socket
send, template render and JSON dump, and at 100 listeners most of its ticks started late.
On its own loop the clock only waits for media work (and for the GIL, which is why the
engine shortens the interpreter's switch interval).

The engine offers the hub's API (`frontend.MediaFrontEnd`) to code running on *another*
loop (daphne's):
- coroutines (`offer`, `release`, `close`) run on the media loop and are awaited from the
  caller's loop; their exceptions (`MediaError`) reach the caller;
- rule changes (`set_audible`, `set_local_mutes`, `set_playback`, `send_sei`,
  `release_later`, `cancel_release`) are posted and return at once, in order: the media
  loop applies them in the order they came;
- level, SEI and playback listeners are called on the loop that subscribed them, one
  wake-up per loop and report however many sockets listen there.
Nothing of the hub is touched from another thread except the read-only inspection helpers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from aiortc import RTCIceServer

from .frontend import HubRelay
from .hub import MediaHub, RoomMedia
from .mixer import RoomMixer
from .peer import MediaPeer
from .player import MediaPlayer

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Python's default (5 ms) lets a busy daphne thread hold the GIL for a quarter of a tick
# each time the media thread wakes up; 1 ms keeps the clock's wake-up jitter small.
DEFAULT_SWITCH_INTERVAL = 0.001
STOP_TIMEOUT = 10.0


class MediaEngine(HubRelay):
    """Owns a `MediaHub` living on a dedicated thread's event loop; start on creation."""

    def __init__(
        self,
        *,
        ice_servers: Iterable[RTCIceServer] = (),
        connect_timeout: float = 15.0,
        switch_interval: float | None = DEFAULT_SWITCH_INTERVAL,
    ) -> None:
        super().__init__()
        if switch_interval:
            sys.setswitchinterval(switch_interval)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="liveaudio-media", daemon=True)
        self._thread.start()
        self._hub: MediaHub = self._call_soon_blocking(
            lambda: MediaHub(
                ice_servers=ice_servers,
                connect_timeout=connect_timeout,
                on_levels=self._levels.deliver,
                on_peer_closed=self._closures.deliver,
                on_playback=self._deliver_playback,
                on_sei=self._sei.deliver,
            )
        )

    # -- awaited from the caller's loop --------------------------------------------------------

    async def close(self) -> None:
        """Close every room, then stop the media thread; idempotent."""
        if not self._thread.is_alive():
            return
        try:
            await self._await(self._hub.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, STOP_TIMEOUT)

    async def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the media loop (a consistent read of the hub, for reports)."""
        return await asyncio.wrap_future(self._submit(function))

    async def query(self, function: Callable[[MediaHub], T]) -> T:
        """`function(hub)` run on the media loop (the same call as `MediaProcess.query`)."""
        return await self.call(lambda: function(self._hub))

    # -- inspection (tests, stats): plain reads of the hub from any thread --------------------

    def peer(self, room: Hashable, user_id: str) -> MediaPeer | None:
        return self._hub.peer(room, user_id)

    def mixer(self, room: Hashable) -> RoomMixer | None:
        return self._hub.mixer(room)

    def player(self, room: Hashable) -> MediaPlayer | None:
        return self._hub.player(room)

    def room_media(self) -> Iterator[tuple[Hashable, RoomMedia]]:
        return self._hub.room_media()

    def counts(self) -> dict[str, int]:
        counts = self._hub.counts()
        counts["level_listeners"] = self._levels.count()
        return counts

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- internals ---------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            self._cancel_leftovers()
        finally:
            self._loop.close()

    def _cancel_leftovers(self) -> None:
        """Tasks still running when the loop stops (e.g. a close that timed out)."""
        tasks = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())

    async def _call(self, method: str, *args: Any) -> Any:
        return await self._await(getattr(self._hub, method)(*args))

    async def _await(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wrap_future(future)

    def _post(self, method: str, *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(getattr(self._hub, method), *args)
        except RuntimeError:  # the engine was closed: nothing left to apply it to
            logger.debug("media engine closed; dropped %s", method)

    def _submit(self, function: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function())
                except Exception as exc:
                    future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future

    def _call_soon_blocking(self, function: Callable[[], T]) -> T:
        return self._submit(function).result(STOP_TIMEOUT)
