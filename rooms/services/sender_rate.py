"""How many room commands one sender may send: at most ``limit`` in any one second, counted
per user per room, not per socket, so a second tab, a reconnect or the HTTP API speaking
for that user does not start a fresh allowance.

Two ways to count, picked by the settings:

- one process (no ``LIVEAUDIO_REDIS_URL``): a sliding window per sender in this process,
  shared by all its sockets and API requests;
- scale-out mode: the window lives in Redis (a sorted set per sender, trimmed and counted
  by one Lua script on Redis's own clock, gone a second after its last command), so every
  daphne process counts against the same window. That costs one Redis round trip a command
  and no database write. Should Redis fail, the process counts on its own, and asks Redis
  again every few seconds (a sender may meanwhile get the limit once in each process, never
  an unlimited rate).

A refused command is not counted: a sender that slows down is let through again at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

WINDOW = 1.0  # seconds
PRUNE_EVERY = 10.0  # seconds: idle senders' windows are dropped this often
# After Redis failed, it is asked again only this much later: a Redis that hangs must not
# cost every command its time-out (the check runs on the thread the sockets' queries share).
REDIS_RETRY_AFTER = 5.0  # seconds

# KEYS[1] the sender's window; ARGV[1] the limit, ARGV[2] a unique member. 1: allowed.
ALLOW_SCRIPT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - 1000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ms, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 1000)
return 1
"""


class LocalRates:
    """The windows of this process, one per (room, sender); safe from any thread."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[int, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._pruned_at = clock()

    def allow(self, room_pk: int, sender: str, limit: int) -> bool:
        with self._lock:
            now = self._clock()
            if now - self._pruned_at >= PRUNE_EVERY:
                self._prune(now)
            times = self._windows.setdefault((room_pk, sender), deque())
            while times and now - times[0] >= WINDOW:
                times.popleft()
            if len(times) >= limit:
                return False
            times.append(now)
            return True

    def _prune(self, now: float) -> None:
        self._pruned_at = now
        idle = [
            key for key, times in self._windows.items() if not times or now - times[-1] >= WINDOW
        ]
        for key in idle:
            del self._windows[key]


class RedisRates:
    """The windows in Redis, shared by every process that uses this Redis and prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(ALLOW_SCRIPT)
        self._prefix = prefix
        self._fallback = LocalRates()
        self._failing = False
        self._retry_at = 0.0

    def allow(self, room_pk: int, sender: str, limit: int) -> bool:
        if self._failing and time.monotonic() < self._retry_at:
            return self._fallback.allow(room_pk, sender, limit)
        key = f"{self._prefix}:command-rate:{room_pk}:{sender}"
        try:
            allowed = bool(self._script(keys=[key], args=[limit, uuid.uuid4().hex]))
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("room command rates counted in this process only: %r", exc)
            self._failing = True
            self._retry_at = time.monotonic() + REDIS_RETRY_AFTER
            return self._fallback.allow(room_pk, sender, limit)
        if self._failing:
            log.info("room command rates are counted in Redis again")
            self._failing = False
        return allowed


@lru_cache(maxsize=4)
def _rates_for(url: str, prefix: str) -> LocalRates | RedisRates:
    return RedisRates(url, prefix) if url else LocalRates()


def sender_allowed(room_pk: int, sender: str) -> bool:
    """Count one command of ``sender`` in the room; False: over the limit, not counted."""
    rates = _rates_for(settings.LIVEAUDIO_REDIS_URL, settings.LIVEAUDIO_REDIS_PREFIX)
    return rates.allow(room_pk, sender, settings.LIVEAUDIO_ROOM_COMMANDS_PER_SECOND)


def forget_all() -> None:
    """Start every count afresh (tests: one test's flood is not the next one's)."""
    _rates_for.cache_clear()
