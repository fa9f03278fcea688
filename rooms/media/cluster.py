"""The media workers of a deployment, and where each room and peer lives: kept in Redis.

Scale-out mode runs media workers as processes of their own (`node.py`), on any host, in
two roles: a **mixer** holds a room's speakers and mixes it; a **relay** holds listeners
and forwards their room's mix (`relay.py`). Each worker announces itself here, beats every
`BEAT_SECONDS` and counts as gone when `ALIVE_SECONDS` pass without a beat. Any daphne
process (`remote.py`) and any relay reads the same placement:

- `<prefix>:media:workers`   hash   name -> the worker's `WorkerInfo` (JSON)
- `<prefix>:media:alive:<n>` string set with each beat, expires after `ALIVE_SECONDS`
- `<prefix>:media:load`      hash   name -> peers (the beats' counts, plus placements since)
- `<prefix>:media:mixer:<r>` string the worker mixing room r (replaced only if it is gone)
- `<prefix>:media:peers:<r>` hash   user ID -> the worker holding their peer

Commands travel on the channel layer (channels-redis, the sockets' own), to the worker's
channel; reports come back on the room's group (`room_group`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

BEAT_SECONDS = 0.5
ALIVE_SECONDS = 1.5  # three beats missed: the worker is gone
MIXER, RELAY = "mixer", "relay"
MAX_CONNECTIONS = 16  # to Redis, per process
POOL_TIMEOUT = 10.0  # seconds a call waits for one of them

# Set the room's mixer to ARGV[2] only if it is still ARGV[1] ("" = none): two processes
# replacing a dead mixer at once agree on one.
_REPLACE = """
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return current
"""
# Forget a peer only if it is still on the worker named (a newer offer may have moved it).
_DROP_PEER = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    role: str  # MIXER or RELAY
    channel: str  # its channel on the channel layer
    feeds: tuple[str, int]  # its feed socket: where a mixer's feeds leave, a relay's arrive
    pid: int = 0
    host: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerInfo:
        data = json.loads(text)
        data["feeds"] = (str(data["feeds"][0]), int(data["feeds"][1]))
        return cls(**data)


def room_group(room: Hashable) -> str:
    """The channel-layer group of a room's media reports (levels, SEI, playback, closures)."""
    return f"media.{room}"


class Registry:
    """Workers, rooms and peers in Redis; every method is one or two round trips."""

    def __init__(self, url: str, prefix: str = "liveaudio") -> None:
        # A blocking pool: a burst (a thousand joins, a relay's peers closing at once) waits
        # for a connection instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT, decode_responses=True
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self._prefix = f"{prefix}:media"
        self._replace = self.redis.register_script(_REPLACE)
        self._drop_peer = self.redis.register_script(_DROP_PEER)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()

    def _key(self, *parts: Any) -> str:
        return ":".join([self._prefix, *map(str, parts)])

    # -- workers -------------------------------------------------------------------------------

    async def announce(self, info: WorkerInfo, peers: int) -> None:
        """A worker's beat: it is alive, and holds `peers` peers."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key("workers"), info.name, info.to_json())
            pipe.set(self._key("alive", info.name), "1", px=int(ALIVE_SECONDS * 1000))
            pipe.hset(self._key("load"), info.name, peers)
            await pipe.execute()

    async def withdraw(self, name: str) -> None:
        """A worker that stops says so: nothing is placed on it any more."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self._key("workers"), name)
            pipe.delete(self._key("alive", name))
            pipe.hdel(self._key("load"), name)
            await pipe.execute()

    async def workers(self) -> list[WorkerInfo]:
        """The workers alive now."""
        entries = await self.redis.hgetall(self._key("workers"))
        if not entries:
            return []
        names = list(entries)
        alive = await self.redis.mget([self._key("alive", name) for name in names])
        return [
            WorkerInfo.from_json(entries[name])
            for name, beat in zip(names, alive, strict=True)
            if beat is not None
        ]

    async def alive(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        beats = await self.redis.mget([self._key("alive", name) for name in names])
        return {name for name, beat in zip(names, beats, strict=True) if beat is not None}

    async def worker(self, name: str) -> WorkerInfo | None:
        """The worker named, if it is alive."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._key("workers"), name)
            pipe.get(self._key("alive", name))
            text, beat = await pipe.execute()
        return WorkerInfo.from_json(text) if text is not None and beat is not None else None

    async def loads(self, names: list[str]) -> dict[str, int]:
        """Peers per worker, as last beaten (plus placements since)."""
        if not names:
            return {}
        counts = await self.redis.hmget(self._key("load"), names)
        return {name: int(count or 0) for name, count in zip(names, counts, strict=True)}

    async def least_loaded(self, role: str) -> WorkerInfo | None:
        """The alive worker of `role` with the fewest peers, counted as placed."""
        workers = [w for w in await self.workers() if w.role == role]
        if not workers:
            return None
        loads = await self.redis.hmget(self._key("load"), [w.name for w in workers])
        chosen = min(
            zip(workers, loads, strict=True), key=lambda pair: (int(pair[1] or 0), pair[0].name)
        )[0]
        await self.redis.hincrby(self._key("load"), chosen.name, 1)  # until its next beat
        return chosen

    # -- rooms ---------------------------------------------------------------------------------

    async def mixer_for(self, room: Hashable, *, place: bool = True) -> WorkerInfo | None:
        """The worker mixing `room`; with `place`, one is chosen if none is (or it is gone)."""
        key = self._key("mixer", room)
        current = await self.redis.get(key)
        if current is not None:
            info = await self.worker(str(current))
            if info is not None:
                return info
        if not place:
            return None
        candidate = await self.least_loaded(MIXER)
        if candidate is None:
            return None
        expected = current if current is not None else ""
        winner = str(await self._replace(keys=[key], args=[expected, candidate.name]))
        if winner != candidate.name:
            logger.info("room %s: %s placed its mixer first", room, winner)
            return await self.worker(winner)
        logger.info("room %s: mixer on %s", room, candidate.name)
        return candidate

    # -- peers ---------------------------------------------------------------------------------

    async def peer_worker(self, room: Hashable, user_id: str) -> str | None:
        name = await self.redis.hget(self._key("peers", room), user_id)
        return str(name) if name is not None else None

    async def peer_info(self, room: Hashable, user_id: str) -> WorkerInfo | None:
        """The live worker holding this participant's peer, if any."""
        name = await self.peer_worker(room, user_id)
        return await self.worker(name) if name is not None else None

    async def set_peer(self, room: Hashable, user_id: str, worker: str) -> None:
        await self.redis.hset(self._key("peers", room), user_id, worker)

    async def drop_peer(self, room: Hashable, user_id: str, worker: str) -> bool:
        return bool(await self._drop_peer(keys=[self._key("peers", room)], args=[user_id, worker]))

    async def peers(self, room: Hashable) -> dict[str, str]:
        entries = await self.redis.hgetall(self._key("peers", room))
        return {str(user): str(name) for user, name in entries.items()}
