"""MediaEngine: the hub on its own thread, driven from the test's loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rooms.media import MediaEngine, MediaError

pytestmark = pytest.mark.asyncio


async def test_offer_errors_reach_the_caller_and_close_stops_the_thread() -> None:
    engine = MediaEngine()
    try:
        with pytest.raises(MediaError) as error:
            await engine.offer("room", "a", "hello")
        assert error.value.code == "bad_sdp"
        assert engine.counts() == {"rooms": 0, "peers": 0, "level_listeners": 0}
    finally:
        await engine.close()
    assert not engine.running
    await engine.close()  # idempotent


async def test_levels_reach_the_subscriber_on_its_own_loop() -> None:
    engine = MediaEngine()
    received: list[tuple[dict[str, float], threading.Thread]] = []
    got = asyncio.Event()

    def listener(levels: dict[str, float]) -> None:
        received.append((levels, threading.current_thread()))
        got.set()

    try:
        unsubscribe = engine.subscribe_levels("room", listener)
        assert engine.counts()["level_listeners"] == 1
        # What a room's mixer does every ~120 ms, on the media thread.
        await engine.call(lambda: engine._hub._fan_out("room", {"a": 0.5}))
        await asyncio.wait_for(got.wait(), 2.0)
        assert received == [({"a": 0.5}, threading.current_thread())]
        unsubscribe()
        assert engine.counts()["level_listeners"] == 0
    finally:
        await engine.close()


async def test_rule_changes_are_applied_on_the_media_loop_in_order() -> None:
    engine = MediaEngine()
    try:
        engine.set_audible("room", {"a"})  # no room yet: ignored, not an error
        engine.set_local_mutes("room", "a", {"b"})
        engine.cancel_release("room", "a")
        engine.release_later("room", "a", 1.0)
        assert await engine.call(lambda: threading.current_thread().name) == "liveaudio-media"
    finally:
        await engine.close()
