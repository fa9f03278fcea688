"""MediaProcess: the process's `MediaHub` in a child process of its own (the media worker).

Why a process: on a thread, the mixer shares the GIL with daphne. Every `sendto` and every
SRTP call lets the GIL go, and a busy daphne thread then keeps it for up to a switch
interval, so a tick that sends to 300 listeners waited far longer than it worked (33 ms
ticks at 300 listeners with the server at 70 % of a core). In its own process the 20 ms
clock competes with nothing but its own peers.

`MediaProcess` offers the same API as `MediaEngine` (`frontend.MediaFrontEnd`), so
`rooms.rtc.media_hub()` can return either:
- coroutines (`offer`, `release`, `close`, `query`) send a request and await its reply;
  a `MediaError` raised in the worker is raised again here with its code and message;
- rule changes (`set_audible`, `set_local_mutes`, `set_playback`, `send_sei`,
  `release_later`, `cancel_release`) are sent and return at once; the worker applies them
  in the order they came;
- speaking levels, released SEIs and playback reports come back from the worker and are
  handed to each subscribing loop.

The wire is a `multiprocessing` pipe carrying pickled tuples. The worker is started with
the "spawn" method (a fresh interpreter: no daphne, no Twisted, no Django) and exits when
the pipe closes, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from aiortc import RTCIceServer

from .errors import MediaError
from .frontend import HubRelay
from .hub import MediaHub

logger = logging.getLogger(__name__)

T = TypeVar("T")
STOP_TIMEOUT = 10.0
_ASYNC_METHODS = {"offer", "release", "close"}
_POSTED_METHODS = {
    "set_audible",
    "set_local_mutes",
    "set_playback",
    "send_sei",
    "release_later",
    "cancel_release",
}


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs to build its hub (picklable: it crosses the process boundary)."""

    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    connect_timeout: float = 15.0
    loopback_only: bool = False


def hub_counts(hub: MediaHub) -> dict[str, int]:
    return hub.counts()


class MediaProcess(HubRelay):
    """Owns the media worker process and talks to it; start on creation."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__()
        self._config = config
        self._send_lock = threading.Lock()  # also makes a restart happen once
        self._ids = itertools.count(1)
        self._closed = False
        self._start()

    def _start(self) -> None:
        """A new worker, its pipe, and a reader thread for that pipe alone."""
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, self._config), name="liveaudio-media", daemon=True
        )
        self._process.start()
        child.close()
        self._pending: dict[int, concurrent.futures.Future] = {}
        self._audible_sent.forget()  # the new worker knows no room yet
        self._reader = threading.Thread(
            target=self._read,
            args=(self._conn, self._pending),
            name="liveaudio-media-pipe",
            daemon=True,
        )
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.is_alive() and self._reader.is_alive()

    # -- awaited ---------------------------------------------------------------------------------

    async def query(self, function: Callable[[MediaHub], T]) -> T:
        """`function(hub)` run in the worker; it must be a module-level (picklable) function."""
        return await self._call("query", function)

    async def close(self) -> None:
        """Close every room, then let the worker exit; idempotent."""
        self._closed = True
        if not self._process.is_alive():
            return
        try:
            await self._call("close")
        except (MediaError, ConnectionError):
            pass
        finally:
            self._conn.close()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._process.join, STOP_TIMEOUT)
            if self._process.is_alive():
                self._process.kill()

    # -- the pipe --------------------------------------------------------------------------------

    async def _call(self, method: str, *args: Any) -> Any:
        request_id = next(self._ids)
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._send(("call", request_id, method, args), future)
        except (OSError, ValueError) as exc:
            raise ConnectionError("the media worker is gone") from exc
        return await asyncio.wrap_future(future)

    def _post(self, method: str, *args: Any) -> None:
        try:
            self._send(("post", 0, method, args))
        except (OSError, ValueError):  # closed: nothing left to apply it to
            logger.debug("media worker closed; dropped %s", method)

    def _send(self, message: tuple, future: concurrent.futures.Future | None = None) -> None:
        with self._send_lock:
            if not self._closed and not self._process.is_alive():
                # Its peers are gone with it; their browsers notice and offer again, to a
                # new worker. Better than a server whose rooms stay silent until restarted.
                # Playbacks go on where they were last reported.
                logger.error(
                    "media worker %s died (exit code %s); starting a new one",
                    self._process.pid,
                    self._process.exitcode,
                )
                self._start()
                for room, spec in self.playbacks_to_resume():
                    self._conn.send(("post", 0, "set_playback", (room, spec)))
            if future is not None:
                self._pending[message[1]] = future
            try:
                self._conn.send(message)
            except BaseException:
                if future is not None:
                    self._pending.pop(message[1], None)
                raise

    def _read(self, conn: Connection, pending: dict[int, concurrent.futures.Future]) -> None:
        """A reader thread: replies settle futures, level reports go to their loops."""
        try:
            while True:
                message = conn.recv()
                if message[0] == "levels":
                    self._levels.deliver(*message[1:])
                elif message[0] == "peer_closed":
                    self._closures.deliver(*message[1:])
                elif message[0] == "sei":
                    self._sei.deliver(*message[1:])
                elif message[0] == "playback":
                    self._deliver_playback(*message[1:])
                else:
                    _settle(pending, *message[1:])
        except (EOFError, OSError):
            pass
        finally:
            for future in pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the media worker is gone"))
            pending.clear()


def _settle(
    pending: dict[int, concurrent.futures.Future], request_id: int, ok: bool, value: Any
) -> None:
    future = pending.pop(request_id, None)
    if future is None or future.done():
        return
    if ok:
        future.set_result(value)
    else:
        code, message = value
        future.set_exception(MediaError(code, message))


# -- the worker side ----------------------------------------------------------------------------


def serve(conn: Connection, config: WorkerConfig) -> None:
    """The worker process's main: one event loop, one hub, until the pipe closes."""
    from .patches import install_server_patches

    # Spawned: no Django logging here. The media plane's own notices go to the server's
    # stderr, which the worker shares; aiortc's and aioice's chatter stays out.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)-8s media-worker %(name)s %(message)s",
    )
    logging.getLogger("rooms").setLevel(logging.INFO)
    install_server_patches(loopback_only=config.loopback_only)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_Worker(conn, config).run())
    finally:
        loop.close()


class _Worker:
    def __init__(self, conn: Connection, config: WorkerConfig) -> None:
        self._conn = conn
        self._hub = MediaHub(
            ice_servers=[RTCIceServer(**server) for server in config.ice_servers],
            connect_timeout=config.connect_timeout,
            on_levels=lambda room, levels: self._reply(("levels", room, levels)),
            on_peer_closed=lambda *closed: self._reply(("peer_closed", *closed)),
            on_playback=lambda room, report: self._reply(("playback", room, report)),
            on_sei=lambda room, release: self._reply(("sei", room, release)),
        )
        self._done = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._conn.fileno(), self._readable)
        try:
            await self._done.wait()
        finally:
            loop.remove_reader(self._conn.fileno())
            await self._hub.close()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _readable(self) -> None:
        try:
            while self._conn.poll():
                self._dispatch(*self._conn.recv())
        except (EOFError, OSError):
            self._done.set()  # the server went away (or closed us): stop

    def _dispatch(self, kind: str, request_id: int, method: str, args: tuple) -> None:
        if kind == "post":
            if method in _POSTED_METHODS:
                getattr(self._hub, method)(*args)
            return
        task = asyncio.get_running_loop().create_task(self._answer(request_id, method, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request_id: int, method: str, args: tuple) -> None:
        try:
            if method in _ASYNC_METHODS:
                value = await getattr(self._hub, method)(*args)
            elif method == "query":
                value = args[0](self._hub)
            else:
                raise MediaError("bad_request", f"unknown media call {method!r}")
            reply = (request_id, True, value)
        except MediaError as exc:
            reply = (request_id, False, (exc.code, exc.message))
        except Exception as exc:
            logger.exception("media call %s failed", method)
            reply = (request_id, False, ("internal", f"{type(exc).__name__}: {exc}"))
        self._reply(("reply", *reply))
        if method == "close":
            self._done.set()

    def _reply(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            self._done.set()


def worker_pid(hub: MediaHub) -> int:
    """For tests: the pid of the process a `query` runs in."""
    return os.getpid()
