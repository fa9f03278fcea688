"""Shared helpers for the media tests (a plain module: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from bench.bot import Bot, connect_in_process
from rooms.media import MediaFrontEnd, MediaPeer, RoomMixer

A_TONE, C_TONE, X_TONE = 440.0, 660.0, 880.0
TONES = (A_TONE, C_TONE, X_TONE)


async def wait_until(
    condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05
) -> None:
    """Poll `condition` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def join(front: MediaFrontEnd, room: str, name: str, tone: float | None) -> Bot:
    """A bot connected to a front end's hub (an engine's thread or a worker process)."""
    bot = Bot(name, tone)
    answer = await front.offer(room, name, await bot.create_offer())
    await bot.accept_answer(answer)
    return bot


class Room:
    """A RoomMixer plus in-process bots connected to MediaPeers."""

    def __init__(self) -> None:
        self.mixer = RoomMixer()
        self.bots: dict[str, Bot] = {}
        self.peers: dict[str, MediaPeer] = {}

    async def join(
        self, pid: str, frequency: float | None, *, audible: bool, thin: bool = False
    ) -> Bot:
        self.mixer.set_audible(pid, audible)
        bot = Bot(pid, frequency, thin=thin)
        peer = MediaPeer(pid, self.mixer)
        self.bots[pid], self.peers[pid] = bot, peer
        await connect_in_process(bot, peer)
        return bot

    async def wait_connected(self, timeout: float = 10.0) -> None:
        for peer in self.peers.values():
            await peer.wait_connected(timeout)

    async def close(self) -> None:
        for bot in self.bots.values():
            await bot.close()
        for peer in self.peers.values():
            await peer.close()
        self.bots.clear()
        self.peers.clear()
        await self.mixer.stop()


def media_tasks() -> set[asyncio.Task]:
    """Every live task except the running test's own."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


# Threads that were running when the current test started (set by conftest's autouse
# fixture): a process-wide media hub of an earlier test module may still own some, and they
# are not this test's leak.
threads_before_test: set[threading.Thread] = set()


def _new_threads(matches: Callable[[str], bool]) -> int:
    return sum(1 for t in threading.enumerate() if matches(t.name) and t not in threads_before_test)


def decoder_threads() -> int:
    """aiortc starts one decoder thread per receiver; all must be joined on close."""
    return _new_threads(lambda name: name.endswith("-decoder"))


def player_threads() -> int:
    """Media players decode on a thread each; all must end when the playout ends or stops."""
    return _new_threads(lambda name: name.startswith("liveaudio-player-"))


async def wait_for_no_leaks(tasks_before: set[asyncio.Task], timeout: float = 5.0) -> None:
    """Tasks, decoder and player threads drop back to what existed before (polling)."""

    def clean() -> bool:
        return media_tasks() <= tasks_before and decoder_threads() == player_threads() == 0

    try:
        await wait_until(clean, timeout)
    except AssertionError:
        leaked = [t.get_coro() for t in media_tasks() - tasks_before]
        threads = decoder_threads() + player_threads()
        raise AssertionError(f"leaked tasks {leaked}, decoder/player threads {threads}") from None
