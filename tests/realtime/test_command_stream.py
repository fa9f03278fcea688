"""A socket's room commands in the room's order, whatever order the processes' broadcasts
came in: held until the one before has come, and passed over once it is clearly lost."""

from __future__ import annotations

import asyncio

import pytest

from rooms.realtime.commands import CommandStream

pytestmark = pytest.mark.asyncio


def command(key: int, sender: str = "bob") -> dict:
    return {
        "roomID": "r",
        "command": b"%d" % key,
        "senderUserID": sender,
        "timestamp": 1,
        "orderKey": key,
    }


class Frames:
    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.came = asyncio.Event()

    async def send(self, frame: dict) -> None:
        self.frames.append(frame)
        self.came.set()

    def keys(self) -> list[int]:
        return [m["orderKey"] for f in self.frames for m in f["messages"]]

    async def until(self, count: int) -> list[int]:
        async with asyncio.timeout(10):
            while len(self.keys()) < count:
                self.came.clear()
                await self.came.wait()
        return self.keys()


async def test_a_later_command_waits_for_the_one_before_it() -> None:
    out = Frames()
    stream = CommandStream(user_id="ann", after=4, send=out.send, hold=30)
    stream.received(command(7))
    stream.received(command(6))
    stream.received(command(3))  # sent before Ann joined: not hers to see
    await asyncio.sleep(0.2)
    assert out.frames == []  # 5 has not come
    stream.received(command(5, sender="ann"))  # her own: counted, not shown
    assert await out.until(2) == [6, 7]
    assert len(out.frames) == 1  # one frame for what came together
    stream.close()


async def test_a_command_that_never_comes_is_passed_over() -> None:
    out = Frames()
    stream = CommandStream(user_id="ann", after=0, send=out.send, hold=0.3)
    stream.received(command(2))
    stream.received(command(3))
    assert await out.until(2) == [2, 3]
    stream.received(command(1))  # too late: its place is gone
    stream.received(command(4))
    assert await out.until(3) == [2, 3, 4]
    stream.close()
