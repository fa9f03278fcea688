"""The server process's life under daphne: presence from start-up, a graceful stop on SIGTERM.

daphne's own SIGTERM stops the reactor at once: it cancels every application instance while
their threads still run (a closing socket's ``member_disconnect``), and such a thread's
on-commit broadcast then waits forever on the stopped event loop, so the process never
exits. Here SIGTERM (or SIGINT) instead:

1. stops listening, and answers anything that still arrives with 503 (HTTP) or a close with
   ``CLOSE_SERVER_RESTARTING`` (socket);
2. asks every socket to reconnect: the callbacks registered with ``on_restart`` (the room
   consumer's farewell and close), then a bare close 4013 for every socket still open;
3. waits up to ``LIVEAUDIO_SHUTDOWN_DRAIN_SECONDS`` for every request and socket to finish
   (a socket's disconnect writes its member offline and tells the room);
4. forgets this process's presence record (``rooms.presence``) and stops the reactor.

A hard deadline, ``LIVEAUDIO_SHUTDOWN_DEADLINE_SECONDS`` after the signal, ends the process
whatever still runs; a second signal ends it at once.

``ServerLifecycle`` wraps the ASGI application (``liveaudio/asgi.py``) and knows every request
and socket in flight; ``serve_under_daphne()`` hooks start-up and the signals into daphne's
Twisted reactor. Imported elsewhere (tests, management commands), neither does anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from django.conf import settings

from rooms.realtime.close_codes import close_code_for

if TYPE_CHECKING:
    from rooms.presence import Presence

log = logging.getLogger(__name__)

# The close code of a socket that should reconnect in a moment: the server is restarting
# (or this process was taken for dead and its members taken offline).
CLOSE_SERVER_RESTARTING = close_code_for("server_restarting")
# How long the sockets' own farewells may take before the rest are closed bare.
FAREWELL_SECONDS = 1.0

RestartCallback = Callable[[], Awaitable[None]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class _Socket:
    """One websocket as the server sees it: open from its accept to its close or disconnect."""

    def __init__(self, send: Send, process: _Process) -> None:
        self._send = send
        self._process = process
        self.open = False

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.close":
            self.open = False
        await self._send(message)
        if kind == "websocket.accept":
            self.open = True
            if self._process.stopping:  # accepted after the others were told
                await self.close_restarting()

    def receiving(self, receive: Receive) -> Receive:
        async def wrapped() -> dict:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.open = False
            return message

        return wrapped

    async def close_restarting(self) -> None:
        if self.open:
            self.open = False
            await self._send({"type": "websocket.close", "code": CLOSE_SERVER_RESTARTING})


class _Process:
    def __init__(self) -> None:
        self.serving = False  # under daphne, its reactor running
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.in_flight: set[asyncio.Future] = set()
        self.sockets: set[_Socket] = set()
        self.callbacks: dict[int, RestartCallback] = {}
        self.presence: Presence | None = None
        self._start_lock: asyncio.Lock | None = None
        self._signalled = False

    # --- start-up -------------------------------------------------------------------------

    def started(self, reactor: Any) -> None:
        """The reactor runs (called on its loop): hook the signals, register presence."""
        from rooms.presence import Presence

        self.loop = asyncio.get_running_loop()
        self.serving = True
        self.presence = Presence(on_forgotten=self.ask_sockets_to_reconnect)
        if threading.current_thread() is threading.main_thread():
            # After daphne's own handlers (installed as the reactor started): ours win.
            signal.signal(signal.SIGTERM, lambda number, frame: self._signal(reactor, number))
            signal.signal(signal.SIGINT, lambda number, frame: self._signal(reactor, number))
        _keep(asyncio.ensure_future(self.ensure_started()))

    async def ensure_started(self) -> None:
        """Register this process before its first socket is accepted (idempotent)."""
        if self.presence is None or self.presence.channel_prefix:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.presence.channel_prefix:
                return
            try:
                await self.presence.start()
            except Exception:  # the database is away: the next socket tries again
                log.exception("presence: could not register this process")

    # --- stopping -------------------------------------------------------------------------

    def _signal(self, reactor: Any, number: int, frame: FrameType | None = None) -> None:
        if self._signalled:
            _exit_now(f"second signal {number}: exiting at once")
        self._signalled = True
        deadline = settings.LIVEAUDIO_SHUTDOWN_DEADLINE_SECONDS
        timer = threading.Timer(deadline, _exit_now, [f"shutdown took over {deadline} s"])
        timer.daemon = True
        timer.start()
        assert self.loop is not None
        self.loop.call_soon_threadsafe(lambda: _keep(asyncio.ensure_future(self.stop(reactor))))

    async def stop(self, reactor: Any) -> None:
        began = time.monotonic()
        self.stopping = True
        log.warning(
            "stopping: %d socket(s) and %d request(s) in flight",
            len(self.sockets),
            len(self.in_flight) - len(self.sockets),
        )
        try:
            _stop_listening(reactor)
            await self.ask_sockets_to_reconnect()
            drain = settings.LIVEAUDIO_SHUTDOWN_DRAIN_SECONDS - (time.monotonic() - began)
            if self.in_flight:
                await asyncio.wait(set(self.in_flight), timeout=max(0.0, drain))
            if self.in_flight:
                log.warning("stopping: %d still in flight, cancelled", len(self.in_flight))
            if self.presence is not None:  # a database that hangs has the deadline
                await asyncio.wait_for(self.presence.stop(), timeout=1.0)
        except Exception:
            log.exception("stopping: a step failed; stopping anyway")
        finally:
            reactor.stop()

    async def ask_sockets_to_reconnect(self) -> None:
        """Every socket's own farewell first (``on_restart``), then a bare close 4013."""
        farewells = [asyncio.ensure_future(callback()) for callback in self.callbacks.values()]
        if farewells:
            done, late = await asyncio.wait(farewells, timeout=FAREWELL_SECONDS)
            for task in late:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("a socket's farewell failed", exc_info=task.exception())
        for sock in list(self.sockets):
            try:
                await sock.close_restarting()
            except Exception:  # its connection is already gone
                log.debug("closing a socket failed", exc_info=True)


_process = _Process()
_background: set[asyncio.Future] = set()


def _keep(task: asyncio.Future) -> None:
    _background.add(task)
    task.add_done_callback(_background.discard)


def _exit_now(reason: str) -> None:
    # Not logging: its locks may be held by the very thread that hangs.
    os.write(2, f"liveaudio: {reason}\n".encode())
    os._exit(1)


def _stop_listening(reactor: Any) -> None:
    from twisted.internet import tcp  # a UNIX socket's Port is one too

    for reader in reactor.getReaders():
        if isinstance(reader, tcp.Port):
            reader.stopListening()


# --- the entry points ---------------------------------------------------------------------


def on_restart(callback: RestartCallback) -> Callable[[], None]:
    """Call ``callback`` (a coroutine function) when this process asks its sockets to
    reconnect: it is stopping, or it was taken for dead and its members taken offline. A
    room socket registers once accepted and sends its farewell, then closes with
    ``CLOSE_SERVER_RESTARTING``; it calls the returned function when it disconnects.
    A socket that registers nothing is closed with that code all the same."""
    key = id(callback)
    _process.callbacks[key] = callback

    def unregister() -> None:
        _process.callbacks.pop(key, None)

    return unregister


def stopping() -> bool:
    """The process is shutting down: refuse new work (a join) politely."""
    return _process.stopping


def loop_stopped() -> bool:
    """The server's event loop has stopped: nothing awaited on it will ever complete."""
    loop = _process.loop
    return loop is not None and not loop.is_running()


def serve_under_daphne() -> None:
    """Hook start-up and the signals into daphne's reactor, if this process runs one."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        reactor.callWhenRunning(reactor.callLater, 0, _process.started, reactor)


class ServerLifecycle:
    """ASGI middleware: knows every request and socket in flight, refuses new ones while
    stopping, and makes sure the process is registered before a socket is handled."""

    def __init__(self, application: Callable[..., Awaitable[None]]) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.application(scope, receive, send)
            return
        if _process.stopping:
            await _refuse(kind, receive, send)
            return
        if kind == "websocket" and _process.serving:
            await _process.ensure_started()
        task = asyncio.current_task()
        assert task is not None  # the server runs each request and socket as a task
        _process.in_flight.add(task)
        try:
            if kind == "websocket":
                await self._socket(scope, receive, send)
            else:
                await self.application(scope, receive, send)
        finally:
            _process.in_flight.discard(task)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        sock = _Socket(send, _process)
        _process.sockets.add(sock)
        try:
            await self.application(scope, sock.receiving(receive), sock.send)
        finally:
            _process.sockets.discard(sock)


async def _refuse(kind: str, receive: Receive, send: Send) -> None:
    if kind == "http":
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"retry-after", b"5"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b"The server is restarting.\n"})
        return
    if (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_SERVER_RESTARTING})
