"""Listeners on other event loops: how the media plane's reports reach the sockets.

The hub reports on its own loop (a thread's, or the media worker's, relayed by a reader
thread); each listener is called on the loop that subscribed it, one wake-up per loop and
report however many sockets listen there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)

Listener = Callable[..., None]


class RoomSubscribers:
    """Per room: the listeners of each subscribing event loop (thread-safe)."""

    def __init__(self) -> None:
        self._rooms: dict[Hashable, dict[asyncio.AbstractEventLoop, set[Listener]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, room: Hashable, listener: Listener) -> Callable[[], None]:
        """`listener` will be called on the loop running now; returns the unsubscriber."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._rooms.setdefault(room, {}).setdefault(loop, set()).add(listener)

        def unsubscribe() -> None:
            with self._lock:
                loops = self._rooms.get(room, {})
                loops.get(loop, set()).discard(listener)
                if not loops.get(loop, True):
                    del loops[loop]
                if not loops:
                    self._rooms.pop(room, None)

        return unsubscribe

    def count(self) -> int:
        with self._lock:
            return sum(len(ls) for loops in self._rooms.values() for ls in loops.values())

    def deliver(self, room: Hashable, *args: Any) -> None:
        """From any thread: call the room's listeners with `args`, each on its own loop."""
        with self._lock:
            targets = [(loop, tuple(ls)) for loop, ls in self._rooms.get(room, {}).items()]
        for loop, listeners in targets:
            try:
                loop.call_soon_threadsafe(_call_each, listeners, args)
            except RuntimeError:  # that loop is closed; its sockets are gone
                continue


def _call_each(listeners: tuple[Listener, ...], args: tuple) -> None:
    for listener in listeners:
        try:
            listener(*args)
        except Exception:
            logger.exception("media listener failed")


class AudibleMemory:
    """The last audible set each room was sent, so a front end sends only changes.

    Every socket of a room asks for `set_audible` on each update: N identical messages per
    change without this. A room may be made anew by any offer (the hub drops idle rooms),
    so an offer, before and after, and a release forget what was sent.

    Sets come with the revision of the room state they were read from, and one read before
    a newer set was sent is never sent after it: an answer to an offer reads the state
    while updates arrive, and with two server processes an update can arrive late. Without
    this a host mute could be undone until the next change.
    """

    def __init__(self) -> None:
        self._sent: dict[Hashable, frozenset[str]] = {}
        # Newest revision seen per room; kept by `forget` (revisions only grow).
        self._revisions: dict[Hashable, int] = {}

    def changed(self, room: Hashable, audible: frozenset[str], revision: int | None = None) -> bool:
        """Whether `audible` must be sent; remembers it if so. `revision` None: unordered."""
        if revision is not None:
            if revision < self._revisions.get(room, revision):
                return False
            self._revisions[room] = revision
        if self._sent.get(room) == audible:
            return False
        self._sent[room] = audible
        return True

    def last(self, room: Hashable) -> frozenset[str] | None:
        """What `room` was last sent (None: nothing since it was forgotten)."""
        return self._sent.get(room)

    def revision(self, room: Hashable) -> int | None:
        return self._revisions.get(room)

    def forget(self, room: Hashable | None = None) -> None:
        """Forget what one room, or every room (a new worker knows none), was sent."""
        if room is None:
            self._sent.clear()
        else:
            self._sent.pop(room, None)
