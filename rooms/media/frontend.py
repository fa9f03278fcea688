"""The media plane as the Django side sees it: one interface, whichever way the hub runs.

`rooms.rtc.media_hub()` returns a `MediaFrontEnd`: a `MediaEngine` (the hub on a thread of
this process) or a `MediaProcess` (the hub in a media worker process). Both are a
`HubRelay`, which holds what they share; they differ only in how a call reaches the hub.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol, TypeVar, runtime_checkable

from .hub import LevelsListener, MediaHub, PeerClosedListener, PlaybackListener, SeiListener
from .patches import check_versions
from .player import PlaybackReport, PlaybackSpec
from .sei import Sei
from .subscribers import AudibleMemory, RoomSubscribers

T = TypeVar("T")


@runtime_checkable
class MediaFrontEnd(Protocol):
    """The hub's API for code running on another event loop (daphne's).

    Coroutines (`offer`, `release`, `query`, `close`) run where the hub lives and are
    awaited here, with its `MediaError`s; rule changes (`release_later`, `cancel_release`,
    `set_audible`, `set_local_mutes`, `set_playback`, `send_sei`) return at once and are
    applied in the order they were made; listeners are called on the loop that subscribed them.
    """

    @property
    def running(self) -> bool: ...

    async def offer(self, room: Hashable, user_id: str, sdp: str, *, listener: bool = False) -> str:
        """The SDP answer to a participant's offer; raises `MediaError`. `listener`: not on
        a seat (the scale-out mode places listeners on relays, `remote.py`)."""
        ...

    async def release(self, room: Hashable, user_id: str) -> None: ...

    def release_later(self, room: Hashable, user_id: str, delay: float) -> None: ...

    def cancel_release(self, room: Hashable, user_id: str) -> None: ...

    def set_audible(
        self, room: Hashable, user_ids: Iterable[str], revision: int | None = None
    ) -> None: ...

    def set_local_mutes(self, room: Hashable, user_id: str, muted: Iterable[str]) -> None: ...

    def set_playback(self, room: Hashable, spec: PlaybackSpec | None) -> None:
        """What the room plays (`player.PlaybackSpec`); None stops it and frees its decoder."""
        ...

    def send_sei(self, room: Hashable, sei: Sei, capture_ms: float | None = None) -> None:
        """Release `sei` to the room's listeners with the audio it was sent with
        (`MediaHub.send_sei`); `capture_ms` is the sender's wall clock when it was sent."""
        ...

    def subscribe_sei(self, room: Hashable, listener: SeiListener) -> Callable[[], None]:
        """`listener(release)` (a `sei.SeiRelease`) on the loop running now, for each tick
        that releases SEIs; returns the unsubscriber."""
        ...

    def subscribe_playback(self, room: Hashable, listener: PlaybackListener) -> Callable[[], None]:
        """`listener(report)` on the loop running now, on every change of the room's playout
        and every 250 ms while it plays; at once with the last report, if there is one.
        Returns the unsubscriber."""
        ...

    def subscribe_levels(self, room: Hashable, listener: LevelsListener) -> Callable[[], None]:
        """`listener(levels)` on the loop running now; returns the unsubscriber."""
        ...

    def subscribe_peer_closed(
        self, room: Hashable, listener: PeerClosedListener
    ) -> Callable[[], None]:
        """`listener(user_id, reason)` when a peer of `room` closed on its own (ICE timeout
        or failure), on the loop running now; returns the unsubscriber."""
        ...

    def level_listener_count(self) -> int: ...

    async def query(self, function: Callable[[MediaHub], T]) -> T:
        """`function(hub)` run where the hub lives (a module-level function: it may have to
        cross a process boundary)."""
        ...

    async def close(self) -> None:
        """Close every room, then stop the hub; idempotent."""
        ...


class HubRelay(abc.ABC):
    """What both front ends share. A subclass says how a call reaches its hub: `_call`
    awaits one of the hub's coroutines, `_post` sends a rule change and returns at once."""

    def __init__(self) -> None:
        check_versions()  # before anything is patched or started: fail loudly, here
        self._levels = RoomSubscribers()
        self._closures = RoomSubscribers()
        self._playback = RoomSubscribers()
        self._sei = RoomSubscribers()
        # Each room's newest report, for a listener that subscribes after it was sent, and
        # its spec, for a media worker started anew (`playbacks_to_resume`).
        self._last_playback: dict[Hashable, PlaybackReport] = {}
        self._playback_specs: dict[Hashable, PlaybackSpec] = {}
        # Every socket of a room asks for `set_audible` on each update: only changes go.
        self._audible_sent = AudibleMemory()

    @abc.abstractmethod
    async def _call(self, method: str, *args: Any) -> Any:
        """The result of `await hub.<method>(*args)`, awaited from the caller's loop."""

    @abc.abstractmethod
    def _post(self, method: str, *args: Any) -> None:
        """`hub.<method>(*args)`, applied after every rule posted before it."""

    # -- peers (awaited) ---------------------------------------------------------------------

    async def offer(self, room: Hashable, user_id: str, sdp: str, *, listener: bool = False) -> str:
        # The hub may make the room anew: forget what it was sent, before and after.
        self._audible_sent.forget(room)
        try:
            answer: str = await self._call("offer", room, user_id, sdp)
            return answer
        finally:
            self._audible_sent.forget(room)

    async def release(self, room: Hashable, user_id: str) -> None:
        await self._call("release", room, user_id)
        self._audible_sent.forget(room)

    # -- rules (posted, never awaited) -------------------------------------------------------

    def release_later(self, room: Hashable, user_id: str, delay: float) -> None:
        self._post("release_later", room, user_id, delay)

    def cancel_release(self, room: Hashable, user_id: str) -> None:
        self._post("cancel_release", room, user_id)

    def set_audible(
        self, room: Hashable, user_ids: Iterable[str], revision: int | None = None
    ) -> None:
        """Post only what changed, and nothing older (by the room state's `revision`) than
        what was posted."""
        audible = frozenset(user_ids)
        if self._audible_sent.changed(room, audible, revision):
            self._post("set_audible", room, audible)

    def set_local_mutes(self, room: Hashable, user_id: str, muted: Iterable[str]) -> None:
        self._post("set_local_mutes", room, user_id, frozenset(muted))

    def set_playback(self, room: Hashable, spec: PlaybackSpec | None) -> None:
        if spec is None:
            self._last_playback.pop(room, None)
            self._playback_specs.pop(room, None)
        else:
            self._playback_specs[room] = spec
        self._post("set_playback", room, spec)

    def send_sei(self, room: Hashable, sei: Sei, capture_ms: float | None = None) -> None:
        self._post("send_sei", room, sei, capture_ms)

    def playbacks_to_resume(self) -> list[tuple[Hashable, PlaybackSpec]]:
        """Each room's playout as it was last reported, to hand to a new hub: the same key
        from the position reached, so listeners hear it go on where it was."""
        specs = []
        for room, spec in self._playback_specs.items():
            report = self._last_playback.get(room)
            if report is not None and report.key == spec.key:
                if report.state in ("playEnded", "failed"):
                    continue
                spec = dataclasses.replace(spec, start_ms=report.position_ms)
            specs.append((room, spec))
        return specs

    # -- listeners ---------------------------------------------------------------------------

    def subscribe_levels(self, room: Hashable, listener: LevelsListener) -> Callable[[], None]:
        return self._levels.subscribe(room, listener)

    def subscribe_peer_closed(
        self, room: Hashable, listener: PeerClosedListener
    ) -> Callable[[], None]:
        return self._closures.subscribe(room, listener)

    def subscribe_sei(self, room: Hashable, listener: SeiListener) -> Callable[[], None]:
        return self._sei.subscribe(room, listener)

    def subscribe_playback(self, room: Hashable, listener: PlaybackListener) -> Callable[[], None]:
        unsubscribe = self._playback.subscribe(room, listener)
        last = self._last_playback.get(room)
        if last is not None:
            asyncio.get_running_loop().call_soon(listener, last)
        return unsubscribe

    def _deliver_playback(self, room: Hashable, report: PlaybackReport) -> None:
        """From the hub's thread (or the worker's pipe reader): to every subscribed loop."""
        self._last_playback[room] = report
        self._playback.deliver(room, report)

    def level_listener_count(self) -> int:
        return self._levels.count()
