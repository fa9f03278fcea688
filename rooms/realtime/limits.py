"""How many frames one socket may send: every frame counts, well-formed or not.

Past the limit (``per_10s`` frames in any 10 s) the first frame gets one error, the ones
after it are dropped unanswered, and a socket that goes on sending as many again within the
window is closed (``too_many_messages``). Back under the limit, all is forgiven.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum

WINDOW = 10.0


class Verdict(Enum):
    OK = "ok"
    REFUSE = "refuse"  # over the limit: answer this one with an error
    IGNORE = "ignore"  # still over: no answer
    CLOSE = "close"  # it goes on: close the socket


class FrameBudget:
    def __init__(self, per_10s: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_10s = per_10s
        self._clock = clock
        self._accepted: deque[float] = deque()
        self._over: deque[float] = deque()

    def spend(self) -> Verdict:
        now = self._clock()
        for times in (self._accepted, self._over):
            while times and now - times[0] > WINDOW:
                times.popleft()
        if len(self._accepted) < self.per_10s:
            self._accepted.append(now)
            self._over.clear()
            return Verdict.OK
        self._over.append(now)
        if len(self._over) == 1:
            return Verdict.REFUSE
        if len(self._over) > self.per_10s:
            return Verdict.CLOSE
        return Verdict.IGNORE


class PerSecond:
    """At most ``limit`` in any one second (room commands, per sender): the one over it is
    refused and not counted, so a sender that slows down is let through again at once."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        now = self._clock()
        while self._times and now - self._times[0] >= 1.0:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True
