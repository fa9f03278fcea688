"""The in-memory layer sweeps expired messages once a second, not on every receive (a room
update read by N sockets swept N channels N times); what expires still goes."""

from __future__ import annotations

import asyncio
import time

import pytest

from rooms.layers import InMemoryChannelLayer


@pytest.mark.asyncio
async def test_many_receives_sweep_once_a_period_and_an_expired_message_still_goes() -> None:
    layer = InMemoryChannelLayer(expiry=0.2)
    layer.SWEEP_EVERY = 0.25
    gone, busy = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", gone)
    await layer.send(gone, {"type": "never.read"})  # its socket went away without reading
    started = time.monotonic()
    for n in range(500):  # 500 sockets reading a room update
        await layer.send(busy, {"type": "update", "n": n})
        assert (await layer.receive(busy))["n"] == n
    periods = (time.monotonic() - started) / layer.SWEEP_EVERY
    assert layer.sweeps <= periods + 1 < 500, (layer.sweeps, periods)

    async with asyncio.timeout(10):  # past its expiry and a sweep: dropped, out of the group
        while gone in layer.channels or gone in layer.groups.get("room", {}):
            await asyncio.sleep(0.05)
            await layer.send(busy, {"type": "tick"})
            await layer.receive(busy)
