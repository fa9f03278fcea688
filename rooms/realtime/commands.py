"""One socket's room commands, in the room's order: ``orderKey`` 1, 2, 3... as they committed.

Two server processes broadcast their commands each on its own, and the two may cross on the
way: a socket holds a command until those before it have come (at most ``hold`` seconds; a
broadcast that never comes, its process gone, is then passed over). Keys at or below the
one the room had when the socket joined were sent before it was there. The socket's own
commands count in the order but are not shown to it (the HTTP API's, ``toSender``, are, even
to the user it names). Commands that come within one outbox
interval of the last frame go out together in one ``room.commands`` frame.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable

from rooms.realtime.outbox import UPDATE_INTERVAL

log = logging.getLogger(__name__)

GAP_HOLD = 1.0

Send = Callable[[dict], Awaitable[None]]


class CommandStream:
    def __init__(
        self,
        *,
        user_id: str,
        after: int,
        send: Send,
        interval: float = UPDATE_INTERVAL,
        hold: float = GAP_HOLD,
    ) -> None:
        self.user_id = user_id
        self.delivered = after  # the last orderKey passed on (or the room's at the join)
        self._send = send
        self._interval = interval
        self._hold = hold
        self._pending: dict[int, tuple[float, dict]] = {}  # orderKey: (arrived at, message)
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sent_at = float("-inf")

    def received(self, message: dict) -> None:
        key = message["orderKey"]
        if key <= self.delivered or key in self._pending:
            return
        self._pending[key] = (asyncio.get_running_loop().time(), message)
        self._arrived.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        self._pending = {}
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                wait = self._sent_at + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                ready = self._take(loop.time())
                if not ready:
                    await self._wait_for_gap(loop.time())
                    continue
                shown = [m for m in ready if m.get("toSender") or m["senderUserID"] != self.user_id]
                if shown:
                    await self._send(commands_frame(shown))
                    self._sent_at = loop.time()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the socket closed meanwhile, most likely
            log.debug("room commands were not sent: %r", exc)
        finally:
            self._task = None

    def _take(self, now: float) -> list[dict]:
        """The commands next in order; past a gap held too long, from the first one held."""
        if self._pending and self.delivered + 1 not in self._pending:
            first = min(self._pending)
            if now - self._pending[first][0] >= self._hold:
                log.info("room commands %d-%d never came", self.delivered + 1, first - 1)
                self.delivered = first - 1
        ready = []
        while self.delivered + 1 in self._pending:
            self.delivered += 1
            ready.append(self._pending.pop(self.delivered)[1])
        return ready

    async def _wait_for_gap(self, now: float) -> None:
        """Until the missing command comes, or the hold of the first one held is over."""
        oldest = min(arrived for arrived, _ in self._pending.values())
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), max(0.0, oldest + self._hold - now))


def commands_frame(messages: list[dict]) -> dict:
    return {
        "type": "room.commands",
        "roomID": messages[0]["roomID"],
        "messages": [
            {
                "message": base64.b64encode(m["command"]).decode("ascii"),
                "senderUserID": m["senderUserID"],
                "timestamp": m["timestamp"],
                "orderKey": m["orderKey"],
            }
            for m in messages
        ],
    }
