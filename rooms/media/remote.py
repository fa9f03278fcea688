"""RemoteMedia: the media plane of the scale-out mode, as a daphne process sees it.

The same front end as a process's own worker (`frontend.MediaFrontEnd`), but the hubs are
media workers of their own (`node.py`), shared by every daphne process, found in the
registry (`cluster.py`) and driven over the channel layer:

- a **speaker** (anyone seated) is placed on the room's mixer; a **listener** on the
  least-loaded relay (the mixer when there is none); the peer's worker is kept in Redis, so
  a participant may reconnect through any daphne process and its later commands (mutes,
  release) find the peer;
- calls (`offer`, `release`) go to the worker's channel with this process's channel to
  reply to; rules go in the order they were made, one at a time (`_send_posts`);
- reports (levels, SEIs, playback, closed peers) come on each room's group, which this
  process joins while one of its sockets listens to that room;
- a worker that stops beating is gone: its peers are reported closed ("worker_lost") to
  their sockets, whose pages offer again and land on a live worker within the next beats.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from .cluster import BEAT_SECONDS, Registry, WorkerInfo, room_group
from .errors import MediaError
from .frontend import HubRelay
from .hub import LevelsListener, MediaHub, PeerClosedListener, PlaybackListener, SeiListener
from .wire import decode, encode

logger = logging.getLogger(__name__)

T = TypeVar("T")
CALL_TIMEOUT = 20.0  # an offer's answer takes ICE gathering on loopback: well under this
LOST = "worker_lost"


class RemoteMedia(HubRelay):
    """Drives the deployment's media workers from this process; start on first use."""

    places_listeners = True  # `media_link`: say whether an offer is a listener's

    def __init__(self, registry: Registry, layer: Any) -> None:
        super().__init__()
        self.registry = registry
        self._layer = layer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._posts: asyncio.Queue[tuple[str, tuple]] = asyncio.Queue()
        self._channel: str | None = None
        self._starting: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task] = []
        self._rooms: set[Hashable] = set()  # rooms whose group this process joined
        self._alive: set[str] = set()  # workers alive at the last look
        self._lost: set[tuple[Hashable, str, str]] = set()  # peers reported lost
        self._closed = False
        self._stopping = False  # as in node.py: loops go round until this is set

    @property
    def running(self) -> bool:
        return not self._closed

    # -- peers ---------------------------------------------------------------------------------

    async def offer(self, room: Hashable, user_id: str, sdp: str, *, listener: bool = False) -> str:
        """The answer of the worker placed for this participant: the room's mixer for a
        speaker, the least-loaded relay for a listener."""
        # Unlike a process's own worker, nothing is forgotten of what the room was sent: a
        # mixer that takes a room anew asks for it (`room_started`, `_resend_rules`).
        await self._start()
        worker = await self._place(room, listener)
        previous = await self.registry.peer_worker(room, user_id)
        answer: str = await self._call_worker(worker, "offer", room, user_id, sdp)
        await self.registry.set_peer(room, user_id, worker.name)
        self._lost = {lost for lost in self._lost if lost[:2] != (room, user_id)}
        if previous is not None and previous != worker.name:
            # The peer moved (a listener took a seat, a worker was lost): the old one goes.
            old = await self.registry.worker(previous)
            if old is not None:
                await self._send(old, "media.post", "release_later", (room, user_id, 0.0))
        return answer

    async def on_relay(self, room: Hashable, user_id: str) -> bool:
        """Whether this participant's peer is on a relay now (offered through any process)."""
        await self._start()
        worker = await self.registry.peer_info(room, user_id)
        return worker is not None and worker.role == "relay"

    async def release(self, room: Hashable, user_id: str) -> None:
        await self._start()
        name = await self.registry.peer_worker(room, user_id)
        worker = await self.registry.worker(name) if name is not None else None
        if worker is not None:
            await self._call_worker(worker, "release", room, user_id)
        if name is not None:
            await self.registry.drop_peer(room, user_id, name)

    async def _place(self, room: Hashable, listener: bool) -> WorkerInfo:
        worker = await self.registry.least_loaded("relay") if listener else None
        if worker is None:
            worker = await self.registry.mixer_for(room)
        if worker is None:
            raise MediaError("no_media_worker", "No media worker is running; try again soon.")
        return worker

    # -- rules ---------------------------------------------------------------------------------

    def set_audible(
        self, room: Hashable, user_ids: Iterable[str], revision: int | None = None
    ) -> None:
        audible = frozenset(user_ids)
        if self._audible_sent.changed(room, audible, revision):
            self._post("set_audible", room, audible, revision)

    def _post(self, method: str, *args: Any) -> None:
        self._posts.put_nowait((method, args))
        if self._starting is None:
            asyncio.get_running_loop().create_task(self._start())

    async def _send_posts(self) -> None:
        """Rules, one at a time in the order they were made, each to its worker."""
        while not self._stopping:
            method, args = await self._posts.get()
            try:
                worker = await self._route(method, args)
                if worker is not None:
                    await self._send(worker, "media.post", method, args)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: this rule is lost; the next change resends
                logger.exception("media rule %s not sent", method)

    async def _route(self, method: str, args: tuple) -> WorkerInfo | None:
        room = args[0]
        if method in ("set_audible", "send_sei"):
            return await self.registry.mixer_for(room, place=False)
        if method == "set_playback":
            return await self.registry.mixer_for(room, place=args[1] is not None)
        return await self.registry.peer_info(room, args[1])  # a participant's own peer

    # -- reports -------------------------------------------------------------------------------

    def subscribe_levels(self, room: Hashable, listener: LevelsListener) -> Callable[[], None]:
        return self._joined(room, super().subscribe_levels(room, listener))

    def subscribe_peer_closed(
        self, room: Hashable, listener: PeerClosedListener
    ) -> Callable[[], None]:
        return self._joined(room, super().subscribe_peer_closed(room, listener))

    def subscribe_sei(self, room: Hashable, listener: SeiListener) -> Callable[[], None]:
        return self._joined(room, super().subscribe_sei(room, listener))

    def subscribe_playback(self, room: Hashable, listener: PlaybackListener) -> Callable[[], None]:
        return self._joined(room, super().subscribe_playback(room, listener))

    def _joined(self, room: Hashable, unsubscribe: Callable[[], None]) -> Callable[[], None]:
        """Join the room's report group with the first listener (the group stays joined:
        a socket's listeners come and go with each reconnect)."""
        if room not in self._rooms:
            self._rooms.add(room)
            asyncio.get_running_loop().create_task(self._join_group(room))
        return unsubscribe

    async def _join_group(self, room: Hashable) -> None:
        await self._start()
        await self._layer.group_add(room_group(room), self._channel)
        await self._check_peers(room)  # lost before this process listened

    def _deliver(self, message: dict[str, Any]) -> None:
        kind, room, value = (
            message.get("kind"),
            decode(message.get("room")),
            decode(message.get("value")),
        )
        if kind == "levels":
            self._levels.deliver(room, value)
        elif kind == "sei":
            self._sei.deliver(room, value)
        elif kind == "playback":
            self._deliver_playback(room, value)
        elif kind == "peer_closed":
            user_id, reason = value
            self._closures.deliver(room, user_id, reason)
        elif kind == "room_started":
            self._resend_rules(room)

    def _resend_rules(self, room: Hashable) -> None:
        """A mixer took the room anew: what this process last said of it, again."""
        audible = self._audible_sent.last(room)
        if audible is not None:
            self._post("set_audible", room, audible, self._audible_sent.revision(room))
        for resumed, spec in self.playbacks_to_resume():
            if resumed == room:
                self._post("set_playback", room, spec)

    # -- workers lost --------------------------------------------------------------------------

    async def _watch_workers(self) -> None:
        """Every beat: if a worker stopped beating, its peers in this process's rooms are
        reported closed, so their pages offer again (and are placed on a live worker)."""
        while not self._stopping:
            await asyncio.sleep(BEAT_SECONDS)
            try:
                alive = {worker.name for worker in await self.registry.workers()}
                lost = self._alive - alive
                self._alive = alive
                if lost:
                    logger.warning("media workers lost: %s", ", ".join(sorted(lost)))
                    for room in list(self._rooms):
                        await self._check_peers(room)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("media workers: could not read the registry")

    async def _check_peers(self, room: Hashable) -> None:
        peers = await self.registry.peers(room)
        alive = await self.registry.alive(sorted(set(peers.values())))
        for user_id, name in peers.items():
            if name in alive or (room, user_id, name) in self._lost:
                continue
            self._lost.add((room, user_id, name))
            await self.registry.drop_peer(room, user_id, name)
            self._closures.deliver(room, user_id, LOST)

    # -- the channel layer ---------------------------------------------------------------------

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._open())
        await asyncio.shield(self._starting)

    async def _open(self) -> None:
        # The default prefix, as the sockets' own channels: channels-redis reads all of a
        # process's channels of one prefix with one blocking read, and a second prefix would
        # wait its turn behind it (up to 5 s a reply).
        self._channel = await self._layer.new_channel()
        self._alive = {worker.name for worker in await self.registry.workers()}
        self._tasks = [
            asyncio.create_task(loop())
            for loop in (self._read, self._send_posts, self._watch_workers)
        ]

    async def _read(self) -> None:
        assert self._channel is not None
        while not self._stopping:
            try:
                message = await self._layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("media replies: channel layer")
                await asyncio.sleep(BEAT_SECONDS)
                continue
            try:
                if message.get("type") == "media.reply":
                    self._settle(message)
                elif message.get("type") == "media.report":
                    self._deliver(message)
            except Exception:
                logger.exception("media message could not be read")

    def _settle(self, message: dict[str, Any]) -> None:
        future = self._pending.pop(message.get("id", 0), None)
        if future is None or future.done():
            return
        if message.get("ok"):
            future.set_result(decode(message.get("value")))
        else:
            future.set_exception(MediaError(str(message.get("code")), str(message.get("message"))))

    async def _call(self, method: str, *args: Any) -> Any:
        raise NotImplementedError("every call names its worker: `_call_worker`")

    async def _call_worker(self, worker: WorkerInfo, method: str, *args: Any) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._send(worker, "media.call", method, args, id=request_id)
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        except TimeoutError:
            raise MediaError(
                "worker_timeout", f"the media worker {worker.name} did not answer"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    async def _send(
        self, worker: WorkerInfo, kind: str, method: str, args: tuple, **extra: Any
    ) -> None:
        message = {"type": kind, "method": method, "args": encode(args), **extra}
        if kind == "media.call":
            message["reply_to"] = self._channel
        await self._layer.send(worker.channel, message)

    async def query(self, function: Callable[[MediaHub], T]) -> T:
        raise MediaError("not_available", "media workers of the scale-out mode are not queried")

    async def workers_report(self) -> list[dict[str, Any]]:
        """The deployment's live media workers and their peers (for /internal/media-stats/)."""
        workers = await self.registry.workers()
        loads = await self.registry.loads([w.name for w in workers])
        return [
            {"name": w.name, "role": w.role, "host": w.host, "pid": w.pid, "peers": loads[w.name]}
            for w in sorted(workers, key=lambda w: w.name)
        ]

    async def close(self) -> None:
        self._closed = self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        self._tasks = []
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the media plane closed"))
        await self.registry.close()
