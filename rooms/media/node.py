"""A media worker of the scale-out mode, as a process of its own on any host.

    python -m rooms.media.node --role mixer     # speakers' peers, the rooms' mixers
    python -m rooms.media.node --role relay     # listeners' peers, fed by the mixers

It reads the server's environment (`LIVEAUDIO_REDIS_URL`, `LIVEAUDIO_REDIS_PREFIX`,
`LIVEAUDIO_ICE_SERVERS`, `LIVEAUDIO_ICE_LOOPBACK_ONLY`, `LIVEAUDIO_MEDIA_CONNECT_TIMEOUT`)
and needs no Django and no database: it announces itself in the registry (`cluster.py`),
takes commands on its channel of the channel layer (the sockets' channels-redis), answers
the calls there and sends its rooms' reports to each room's group. A relay asks each room's
mixer for the feeds its listeners need, and asks again every `FEED_REFRESH`, so a mixer
placed anew after a crash feeds it without anyone re-offering.

SIGTERM or SIGINT: it withdraws from the registry (nothing more is placed on it), closes
its peers (their pages offer again, and land elsewhere) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Hashable
from typing import Any

from aiortc import RTCIceServer
from channels_redis.core import RedisChannelLayer

from .cluster import BEAT_SECONDS, MIXER, RELAY, Registry, WorkerInfo, room_group
from .errors import MediaError
from .feeds import FEED_REFRESH
from .hub import MediaHub
from .wire import decode, encode

logger = logging.getLogger("rooms.media.node")  # also when run as __main__

STOP_TIMEOUT = 5.0
CALLS = {"offer", "release"}
POSTS = {
    "set_local_mutes",
    "set_playback",
    "send_sei",
    "release_later",
    "cancel_release",
    "ask_feeds",
}


REDIS_SOCKET_TIMEOUT = 10.0  # as liveaudio/settings.py says why


def channel_layer(url: str, prefix: str, capacity: int = 2000) -> RedisChannelLayer:
    """The same channel layer as the server's settings make (`liveaudio/settings.py`)."""
    hosts = [{"address": url, "socket_timeout": REDIS_SOCKET_TIMEOUT}]
    return RedisChannelLayer(hosts=hosts, prefix=prefix, capacity=capacity)


class MediaNode:
    def __init__(
        self,
        role: str,
        registry: Registry,
        layer: RedisChannelLayer,
        *,
        name: str,
        host: str = "127.0.0.1",
        ice_servers: list[RTCIceServer] | None = None,
        connect_timeout: float = 15.0,
    ) -> None:
        if role not in (MIXER, RELAY):
            raise ValueError(f"a media worker is a {MIXER} or a {RELAY}, not {role!r}")
        self.role, self.name, self.host = role, name, host
        self._registry = registry
        self._layer = layer
        self.hub = MediaHub(
            ice_servers=ice_servers or [],
            connect_timeout=connect_timeout,
            relay=role == RELAY,
            on_levels=lambda room, levels: self._report(room, "levels", levels),
            on_peer_closed=self._peer_closed,
            on_playback=lambda room, report: self._report(room, "playback", report),
            on_sei=lambda room, release: self._report(room, "sei", release),
            on_feeds=lambda room, wanted: self._outbox.put_nowait(("feeds", room, wanted)),
        )
        self.info: WorkerInfo | None = None
        self._outbox: asyncio.Queue[tuple] = asyncio.Queue()  # in order: reports, wishes
        self._audible_revisions: dict[Hashable, int] = {}
        self._tasks: set[asyncio.Task] = set()
        # Set before the loops are cancelled: a cancel that lands inside one of redis-py's
        # timeouts may come out as a TimeoutError, which a loop catches and goes round on.
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        feeds = await self.hub.open_feeds(self.host)
        channel = await self._layer.new_channel("media-worker.")
        self.info = WorkerInfo(
            self.name, self.role, channel, feeds, os.getpid(), socket.gethostname()
        )
        await self._registry.announce(self.info, 0)
        logger.info(
            "media %s %s: channel %s, feeds on %s:%s", self.role, self.name, channel, *feeds
        )
        loops = [self._beat(), self._receive(channel), self._send_outbox()]
        if self.role == RELAY:
            loops.append(self._refresh_feeds())
        running = [asyncio.create_task(loop) for loop in loops]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            try:
                await self._registry.withdraw(self.name)
            except Exception:  # Redis away: the beats stop, and it counts as gone soon
                logger.exception("media worker %s: could not withdraw", self.name)
            for task in running:
                task.cancel()
            # A blocking read of the channel layer may take a while to notice the cancel;
            # the peers' goodbye does not wait for it.
            await asyncio.wait(running, timeout=1.0)
            await self.hub.close()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- loops ---------------------------------------------------------------------------------

    async def _beat(self) -> None:
        assert self.info is not None
        while not self._stopping:
            try:
                self.hub.drop_idle_rooms()
                await self._registry.announce(self.info, self.hub.counts()["peers"])
            except Exception:  # Redis away for a moment: beat again
                logger.exception("media worker %s: beat failed", self.name)
            await asyncio.sleep(BEAT_SECONDS)

    async def _receive(self, channel: str) -> None:
        while not self._stopping:
            try:
                message = await self._layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("media worker %s: channel layer", self.name)
                await asyncio.sleep(BEAT_SECONDS)
                continue
            try:
                self._dispatch(message)
            except MediaError as exc:
                logger.warning("media worker %s: refused %s", self.name, exc.message)
            except Exception:
                logger.exception("media worker %s: message failed", self.name)

    async def _send_outbox(self) -> None:
        while not self._stopping:
            item = await self._outbox.get()
            try:
                if item[0] == "report":
                    _, room, message = item
                    await self._layer.group_send(room_group(room), message)
                elif item[0] == "reply":
                    _, channel, message = item
                    await self._layer.send(channel, message)
                elif item[0] == "dropped":
                    _, room, user_id = item
                    await self._registry.drop_peer(room, user_id, self.name)
                else:
                    _, room, wanted = item
                    await self._ask_mixer(room, wanted)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("media worker %s: could not send %s", self.name, item[0])

    async def _refresh_feeds(self) -> None:
        while not self._stopping:
            await asyncio.sleep(FEED_REFRESH)
            for room, wanted in self.hub.feed_wishes().items():
                self._outbox.put_nowait(("feeds", room, wanted))

    async def _ask_mixer(self, room: Hashable, wanted: dict[int, frozenset[str]]) -> None:
        """A relay's wish list to the room's mixer (placed if it has none: a room of
        listeners only still has one, which the speakers will join)."""
        assert self.info is not None
        mixer = await self._registry.mixer_for(room, place=bool(wanted))
        if mixer is None:
            if wanted:
                logger.warning("room %s: no mixer to feed this relay's listeners", room)
            return
        self.hub.allow_feeds_from(mixer.feeds)
        await self._layer.send(
            mixer.channel,
            {
                "type": "media.post",
                "method": "ask_feeds",
                "args": encode((room, self.info.feeds, wanted)),
            },
        )

    # -- commands ------------------------------------------------------------------------------

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, method = message.get("type"), message.get("method")
        args = decode(message.get("args", []))
        if not isinstance(args, tuple) or not args:
            raise MediaError("bad_request", "a media command names its room")
        room = args[0]
        had_room = self._has_room(room)
        if kind == "media.post" and method == "set_audible":
            self._set_audible(room, args)
        elif kind == "media.post" and method in POSTS:
            if method == "ask_feeds":
                room, address, feeds = args
                self.hub.ask_feeds(room, (str(address[0]), int(address[1])), dict(feeds))
            else:
                getattr(self.hub, method)(*args)
        elif kind == "media.call" and method in CALLS:
            task = asyncio.get_running_loop().create_task(self._answer(message, method, args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        else:
            raise MediaError("bad_request", f"unknown media command {kind} {method!r}")
        self._started(room, had_room)

    def _set_audible(self, room: Hashable, args: tuple) -> None:
        """Who the mixer lets through, by the newest room state any server process read."""
        _, user_ids, revision = args
        if revision is not None:
            if revision < self._audible_revisions.get(room, revision):
                return
            self._audible_revisions[room] = revision
        self.hub.set_audible(room, user_ids)

    async def _answer(self, message: dict[str, Any], method: str, args: tuple) -> None:
        room = args[0]
        had_room = self._has_room(room)
        reply: dict[str, Any] = {"type": "media.reply", "id": message.get("id")}
        try:
            value = await getattr(self.hub, method)(*args)
            reply.update(ok=True, value=encode(value))
        except MediaError as exc:
            reply.update(ok=False, code=exc.code, message=exc.message)
        except Exception as exc:
            logger.exception("media call %s failed", method)
            reply.update(ok=False, code="internal", message=f"{type(exc).__name__}: {exc}")
        reply_to = message.get("reply_to")
        if isinstance(reply_to, str):
            self._outbox.put_nowait(("reply", reply_to, reply))
        self._started(room, had_room)

    def _has_room(self, room: Hashable) -> bool:
        return self.hub.mixer(room) is not None or self.hub.relay_room(room) is not None

    def _started(self, room: Hashable, had_room: bool) -> None:
        """A mixer that took a room anew (after its old mixer died, say) asks the server
        processes for its rules again: who is audible, what plays."""
        if self.role == MIXER and not had_room and self._has_room(room):
            self._audible_revisions.pop(room, None)
            self._report(room, "room_started", None)

    # -- reports -------------------------------------------------------------------------------

    def _report(self, room: Hashable, kind: str, value: Any) -> None:
        message = {
            "type": "media.report",
            "kind": kind,
            "room": encode(room),
            "value": encode(value),
        }
        self._outbox.put_nowait(("report", room, message))

    def _peer_closed(self, room: Hashable, user_id: str, reason: str) -> None:
        # In the outbox's order, one at a time: a relay's peers may close by the thousand.
        self._outbox.put_nowait(("dropped", room, user_id))
        self._report(room, "peer_closed", (user_id, reason))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m rooms.media.node", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--role", choices=(MIXER, RELAY), required=True)
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}")
    parser.add_argument(
        "--host",
        default=os.environ.get("LIVEAUDIO_MEDIA_FEED_HOST", "127.0.0.1"),
        help="the address its feeds use (reachable from the other workers)",
    )
    args = parser.parse_args(argv)
    url = os.environ.get("LIVEAUDIO_REDIS_URL", "")
    if not url:
        parser.error("LIVEAUDIO_REDIS_URL is not set: media workers meet in Redis")
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)-8s media-{args.role} %(name)s %(message)s",
    )
    logging.getLogger("rooms").setLevel(logging.INFO)
    from .patches import install_server_patches

    install_server_patches(loopback_only=os.environ.get("LIVEAUDIO_ICE_LOOPBACK_ONLY", "0") == "1")
    prefix = os.environ.get("LIVEAUDIO_REDIS_PREFIX", "liveaudio")
    ice_servers = [
        RTCIceServer(**s) for s in json.loads(os.environ.get("LIVEAUDIO_ICE_SERVERS", "[]"))
    ]
    asyncio.run(_serve(args, url, prefix, ice_servers))


async def _serve(args: argparse.Namespace, url: str, prefix: str, ice_servers: list) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    registry = Registry(url, prefix)
    node = MediaNode(
        args.role,
        registry,
        channel_layer(url, prefix, int(os.environ.get("LIVEAUDIO_CHANNEL_CAPACITY", "2000"))),
        name=args.name,
        host=args.host,
        ice_servers=ice_servers,
        connect_timeout=float(os.environ.get("LIVEAUDIO_MEDIA_CONNECT_TIMEOUT", "15")),
    )
    running = asyncio.create_task(node.run(stop))
    await stop.wait()
    # Whatever hangs in the goodbye, the worker is gone within STOP_TIMEOUT (its peers are
    # reported lost by the beats it no longer sends, and offer again elsewhere).
    done, _ = await asyncio.wait({running}, timeout=STOP_TIMEOUT)
    if not done:
        logger.error("media worker %s: not stopped after %ss", args.name, STOP_TIMEOUT)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.print_stack(limit=8)
        os._exit(1)
    with contextlib.suppress(Exception):
        await registry.close()


if __name__ == "__main__":
    main()
