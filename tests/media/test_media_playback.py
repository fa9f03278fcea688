"""A room's media playback as listeners hear it: real files, real aiortc peers, a real hub.

Through `MediaEngine` (the hub on a thread of this process) and, for the pipe, through
`MediaProcess` (the hub in a worker process): `set_playback` in, what the bots hear and the
`subscribe_playback` reports out.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from media_helpers import A_TONE, join, media_tasks, player_threads, wait_for_no_leaks, wait_until

from bench.bot import Bot
from rooms.media import MEDIA_SOURCE_ID, MediaEngine, PlaybackReport, PlaybackSpec
from rooms.media.report import hub_report
from rooms.media.worker import MediaProcess, WorkerConfig, worker_pid
from tests.media_files import make_tone_file

pytestmark = pytest.mark.asyncio

LOW, HIGH = 500.0, 1000.0
FILE_TONES = (LOW, HIGH)
ALL_TONES = (A_TONE, LOW, HIGH)
ROOM = "r"


class Reports:
    """What `subscribe_playback` delivered, in order."""

    def __init__(self) -> None:
        self.items: list[PlaybackReport] = []

    def __call__(self, report: PlaybackReport) -> None:
        self.items.append(report)

    @property
    def last(self) -> PlaybackReport | None:
        return self.items[-1] if self.items else None

    def reached(self, state: str, key: str = "k") -> bool:
        last = self.last
        return last is not None and last.key == key and last.state == state


@pytest.fixture
def tone_file(tmp_path: Path) -> Path:
    """5 s of 500 Hz, then 5 s of 1 kHz, at half of full scale."""
    return make_tone_file(tmp_path / "tone.mp3")


def spec(path: Path, key: str = "k", **changes: object) -> PlaybackSpec:
    values: dict = {"start_ms": 0, "paused": False, "repeat": False, "volume": 30}
    values.update(changes)
    return PlaybackSpec(key=key, path=str(path), **values)


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    engine = MediaEngine(connect_timeout=10.0)
    try:
        yield engine
    finally:
        await engine.close()
    assert player_threads() == 0


@pytest_asyncio.fixture
async def bots() -> AsyncIterator[list[Bot]]:
    joined: list[Bot] = []
    try:
        yield joined
    finally:
        for bot in joined:
            await bot.close()


async def listeners(engine: MediaEngine, bots: list[Bot], *names: str) -> list[Bot]:
    for name in names:
        bots.append(await join(engine, ROOM, name, None))
    for bot in bots:
        await wait_until(bot.connected.is_set, 15.0)
    return bots


async def test_a_listener_hears_the_file_and_after_a_seek_the_new_place(
    engine: MediaEngine, bots: list[Bot], tone_file: Path
) -> None:
    [listener] = await listeners(engine, bots, "b")
    engine.set_playback(ROOM, spec(tone_file))
    await wait_until(lambda: listener.hears(FILE_TONES) == {LOW}, 10.0)
    engine.set_playback(ROOM, spec(tone_file, key="k2", start_ms=6000))
    await wait_until(lambda: listener.hears(FILE_TONES, seconds=0.3) == {HIGH}, 5.0)


async def test_pause_is_silence_at_a_frozen_position_and_resume_goes_on(
    engine: MediaEngine, bots: list[Bot], tone_file: Path
) -> None:
    [listener] = await listeners(engine, bots, "b")
    reports = Reports()
    engine.subscribe_playback(ROOM, reports)
    engine.set_playback(ROOM, spec(tone_file))
    await wait_until(lambda: listener.hears(FILE_TONES) == {LOW}, 10.0)
    engine.set_playback(ROOM, spec(tone_file, paused=True))
    await wait_until(lambda: reports.reached("pausing"))
    await wait_until(lambda: listener.hears(ALL_TONES, threshold=100, seconds=0.3) == set(), 5.0)
    assert reports.last is not None
    held = reports.last.position_ms
    await wait_until(lambda: listener.heard_seconds() >= 1.0)
    assert engine.player(ROOM).report().position_ms == held  # type: ignore[union-attr]
    engine.set_playback(ROOM, spec(tone_file))
    await wait_until(lambda: listener.hears(FILE_TONES, seconds=0.3) == {LOW}, 5.0)
    await wait_until(lambda: reports.last.position_ms > held + 300)  # type: ignore[union-attr]


async def test_volume_sets_the_level_listeners_hear_by_its_ratio(
    engine: MediaEngine, bots: list[Bot], tone_file: Path
) -> None:
    [listener] = await listeners(engine, bots, "b")

    async def level_at(volume: int) -> float:
        engine.set_playback(ROOM, spec(tone_file, volume=volume))
        await wait_until(lambda: LOW in listener.hears(FILE_TONES, threshold=100), 10.0)
        # Half a second of audio decoded after the change: the last 0.3 s is all at `volume`.
        decoded = listener.frames_decoded
        await wait_until(lambda: listener.frames_decoded >= decoded + 25, 5.0)
        return listener.tone_amplitudes((LOW,), 0.3)[LOW]

    loud, quiet = await level_at(80), await level_at(10)
    decibels = 20 * math.log10(loud / quiet)
    assert decibels == pytest.approx(20 * math.log10(8), abs=3.0)


async def test_everyone_hears_it_speakers_too_except_who_muted_it_in_one_encode_per_mix(
    engine: MediaEngine, bots: list[Bot], tone_file: Path
) -> None:
    bots.append(await join(engine, ROOM, "a", A_TONE))
    speaker, muted, hearing, other = await listeners(engine, bots, "b", "c", "d")
    engine.set_audible(ROOM, {"a"})
    engine.set_playback(ROOM, spec(tone_file))
    engine.set_local_mutes(ROOM, "b", {MEDIA_SOURCE_ID})
    await wait_until(lambda: speaker.hears(ALL_TONES) == {LOW}, 10.0)
    await wait_until(lambda: hearing.hears(ALL_TONES) == {A_TONE, LOW}, 10.0)
    await wait_until(lambda: muted.hears(ALL_TONES) == {A_TONE}, 10.0)
    await wait_until(lambda: other.hears(ALL_TONES) == {A_TONE, LOW}, 10.0)
    # Three mixes: the speaker's (media), the muted listener's (a), everyone else's (a + media).
    mixer = engine.mixer(ROOM)
    assert mixer is not None
    await wait_until(lambda: mixer.stats.encodes_last_tick == 3)
    assert mixer.encoder_count == 3
    engine.set_local_mutes(ROOM, "b", set())
    await wait_until(lambda: muted.hears(ALL_TONES) == {A_TONE, LOW}, 10.0)
    await wait_until(lambda: mixer.encoder_count == 2)


async def test_the_end_is_reported_and_repeat_loops(
    engine: MediaEngine, bots: list[Bot], tmp_path: Path
) -> None:
    [listener] = await listeners(engine, bots, "b")
    reports = Reports()
    engine.subscribe_playback(ROOM, reports)
    short = make_tone_file(tmp_path / "short.wav", segments=((LOW, 1.0),))
    engine.set_playback(ROOM, spec(short))
    await wait_until(lambda: reports.reached("playEnded"), 10.0)
    assert reports.last == PlaybackReport("k", "playEnded", 1000, 1000)
    await wait_until(lambda: listener.hears(FILE_TONES, seconds=0.3) == set(), 5.0)
    engine.set_playback(ROOM, spec(short, key="loop", repeat=True))
    # Past its end and back: a report at a position lower than one before it, still playing.
    await wait_until(lambda: any(r.key == "loop" and r.position_ms > 700 for r in reports.items))
    await wait_until(lambda: reports.reached("playing", "loop") and reports.last.position_ms < 500)
    await wait_until(lambda: listener.hears(FILE_TONES) == {LOW}, 5.0)


async def test_reports_come_every_250_ms_while_playing_even_in_a_room_without_peers(
    engine: MediaEngine, tone_file: Path
) -> None:
    reports = Reports()
    engine.subscribe_playback(ROOM, reports)
    engine.set_playback(ROOM, spec(tone_file))
    await wait_until(lambda: len(reports.items) >= 6, 10.0)
    positions = [r.position_ms for r in reports.items]
    assert positions == sorted(positions) and positions[-1] >= 1000
    assert all(r.state == "playing" and r.duration_ms == 10000 for r in reports.items[1:])
    # A late subscriber is told where the playout is at once.
    late = Reports()
    engine.subscribe_playback(ROOM, late)
    await wait_until(lambda: late.last is not None, 1.0)
    engine.set_playback(ROOM, None)
    await wait_until(lambda: engine.mixer(ROOM) is None and player_threads() == 0)


async def test_a_truncated_file_fails_mid_way_and_the_mixer_keeps_ticking(
    engine: MediaEngine, bots: list[Bot], tmp_path: Path
) -> None:
    whole = make_tone_file(tmp_path / "whole.aac").read_bytes()
    cut = tmp_path / "cut.aac"
    cut.write_bytes(whole[: len(whole) // 4])  # about 2.5 s of it
    bots.append(await join(engine, ROOM, "a", A_TONE))
    _, listener = await listeners(engine, bots, "b")
    engine.set_audible(ROOM, {"a"})
    reports = Reports()
    engine.subscribe_playback(ROOM, reports)
    engine.set_playback(ROOM, spec(cut))
    await wait_until(lambda: listener.hears(ALL_TONES) == {A_TONE, LOW}, 10.0)
    await wait_until(lambda: reports.reached("failed"), 10.0)
    assert reports.last is not None and "truncated or damaged" in reports.last.error
    assert 2000 <= reports.last.position_ms <= 3000
    mixer = engine.mixer(ROOM)
    assert mixer is not None
    ticks = mixer.stats.ticks
    await wait_until(lambda: listener.hears(ALL_TONES, seconds=0.3) == {A_TONE}, 5.0)
    assert mixer.stats.ticks > ticks + 10
    await wait_until(lambda: player_threads() == 0)


async def test_stopping_frees_the_decoder_and_closing_leaves_nothing_behind(
    bots: list[Bot], tone_file: Path
) -> None:
    before = media_tasks()
    engine = MediaEngine(connect_timeout=10.0)
    try:
        await listeners(engine, bots, "b")
        engine.set_playback("other", spec(tone_file))  # a room without peers
        engine.set_playback(ROOM, spec(tone_file))
        await wait_until(lambda: player_threads() == 2)
        engine.set_playback(ROOM, None)
        await wait_until(lambda: player_threads() == 1)
        assert engine.mixer(ROOM) is not None  # its peer still has a mix
    finally:
        await engine.close()
    for bot in bots:
        await bot.close()
    bots.clear()
    assert player_threads() == 0
    await wait_for_no_leaks(before)


async def test_the_worker_process_plays_and_reports_over_its_pipe(tone_file: Path) -> None:
    worker = MediaProcess(WorkerConfig(loopback_only=True, connect_timeout=10.0))
    reports = Reports()
    listener = None
    try:
        worker.subscribe_playback(ROOM, reports)
        worker.set_playback("empty", spec(tone_file))
        listener = await join(worker, ROOM, "b", None)
        worker.set_playback(ROOM, spec(tone_file, start_ms=6000))
        await wait_until(lambda: listener.hears(FILE_TONES) == {HIGH}, 15.0)
        await wait_until(lambda: reports.reached("playing") and reports.last.position_ms > 6500)
        worker.set_playback(ROOM, spec(tone_file, paused=True))
        await wait_until(lambda: reports.reached("pausing"), 5.0)
        rooms = await worker.query(hub_report)
        assert sorted(room["playback"]["state"] for room in rooms) == ["pausing", "playing"]
        worker.set_playback("empty", None)
        await wait_until_async(lambda: rooms_with_playback(worker), 1)
    finally:
        if listener is not None:
            await listener.close()
        await worker.close()
    assert not worker.running


async def rooms_with_playback(worker: MediaProcess) -> int:
    return sum(room["playback"] is not None for room in await worker.query(hub_report))


async def wait_until_async(
    measure: Callable[[], Awaitable[object]], expected: object, timeout: float = 5.0
) -> None:
    """`wait_until` for a condition that must be awaited (a query of the worker)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await measure()) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{value!r} != {expected!r} within {timeout}s")
        await asyncio.sleep(0.05)


async def test_a_new_worker_goes_on_with_the_playout_where_it_was_reported(
    tone_file: Path,
) -> None:
    worker = MediaProcess(WorkerConfig(loopback_only=True, connect_timeout=10.0))
    reports = Reports()
    try:
        worker.subscribe_playback(ROOM, reports)
        worker.set_playback(ROOM, spec(tone_file))
        await wait_until(lambda: reports.reached("playing") and reports.last.position_ms >= 1000)
        first = await worker.query(worker_pid)
        os.kill(first, signal.SIGKILL)
        await asyncio.get_running_loop().run_in_executor(None, worker._process.join, 10)
        assert reports.last is not None
        reached = reports.last.position_ms
        assert await worker.query(worker_pid) != first  # the next call starts a new worker
        count = len(reports.items)
        await wait_until(lambda: len(reports.items) > count + 2, 5.0)
        resumed = reports.items[count:]
        assert all(r.key == "k" and r.state == "playing" for r in resumed)
        assert reached <= resumed[0].position_ms <= reached + 500
    finally:
        await worker.close()
