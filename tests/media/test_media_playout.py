"""The adaptive playout target: simulated arrivals against a simulated 20 ms mixer clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from rooms.media import PlayoutBuffer
from rooms.media.codec import FRAME_SAMPLES, new_opus_encoder, pcm_frame
from rooms.media.playout import target_for_jitter

TICK = 0.020
TICK_PHASE = 0.010  # the mixer ticks half a frame after a punctual packet arrives


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    import numpy as np

    encoder = new_opus_encoder()
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    # Identical frames are fine here: only timing matters.
    packet = bytes(next(iter(encoder.encode(pcm_frame(silence, 0)))))
    return [packet] * 2000


@dataclass
class Run:
    """What the mixer saw at each tick: the target, and each played packet's wait."""

    targets: list[float] = field(default_factory=list)
    waits: list[float | None] = field(default_factory=list)

    def target_at(self, seconds: float) -> float:
        return self.targets[int(seconds / TICK) - 1]

    def worst_wait_ms(self, start: float, end: float) -> float:
        waits = [w for w in self.waits[int(start / TICK) : int(end / TICK)] if w is not None]
        return 1000 * max(waits)


def play(
    packets: list[bytes],
    seconds: float,
    delay: Callable[[int], float | None],
    buffer: PlayoutBuffer | None = None,
) -> tuple[PlayoutBuffer, Run]:
    """Packet k is sent at k * 20 ms and arrives `delay(k)` later (None: lost)."""
    buffer = buffer or PlayoutBuffer()
    ticks = round(seconds / TICK)
    arrivals = sorted((k * TICK + d, k) for k in range(ticks + 5) if (d := delay(k)) is not None)
    run, next_arrival = Run(), 0
    for tick in range(ticks):
        now = tick * TICK + TICK_PHASE
        while next_arrival < len(arrivals) and arrivals[next_arrival][0] <= now:
            arrival, k = arrivals[next_arrival]
            buffer.push(packets[k], k * FRAME_SAMPLES, arrival)
            next_arrival += 1
        frame = buffer.pull()
        run.targets.append(buffer.target_ms)
        punctual = frame is not None and frame.arrival is not None
        run.waits.append(now - frame.arrival if punctual else None)
    return buffer, run


def jittery(seed: int, spread: float) -> Callable[[int], float]:
    rng = random.Random(seed)
    return lambda k: rng.uniform(0.0, spread)


def test_the_target_is_one_frame_plus_the_jitter_in_whole_frames() -> None:
    assert target_for_jitter(0.0, 20, 60) == 20
    assert target_for_jitter(4.0, 20, 60) == 20  # scheduling noise
    assert target_for_jitter(18.0, 20, 60) == 40
    assert target_for_jitter(300.0, 20, 60) == 60


def test_a_clean_stream_plays_at_the_lowest_target(packets: list[bytes]) -> None:
    buffer, run = play(packets, 3.0, lambda k: 0.002)
    assert set(run.targets) == {20}
    assert run.worst_wait_ms(0.1, 3.0) <= 40
    assert buffer.stats.concealed == 0 and buffer.stats.held == 0


def test_a_jittery_stream_raises_the_target(packets: list[bytes]) -> None:
    buffer, run = play(packets, 4.0, jittery(1, 0.045))
    assert run.target_at(4.0) >= 40
    assert buffer.stats.held > 0  # the delay actually grew, not only the number
    # Once the delay has grown, late packets (concealments) become rare.
    concealed_before = buffer.stats.concealed
    play(packets, 2.0, jittery(2, 0.045), buffer=buffer)
    assert buffer.stats.concealed - concealed_before < 10  # of 100 frames


def test_the_target_comes_back_down_when_the_jitter_goes_away(packets: list[bytes]) -> None:
    jitter = jittery(3, 0.045)
    buffer, run = play(packets, 10.0, lambda k: jitter(k) if k < 200 else 0.002)
    assert run.target_at(4.0) >= 40
    assert run.target_at(10.0) == 20
    assert buffer.stats.shrunk > 0
    assert run.worst_wait_ms(9.0, 10.0) <= 40  # the extra delay is gone, not just the number


def test_a_single_loss_does_not_raise_the_target(packets: list[bytes]) -> None:
    buffer, run = play(packets, 4.0, lambda k: None if k == 50 else 0.002)
    assert set(run.targets) == {20}
    assert buffer.stats.held == 0 and buffer.stats.concealed == 1
    assert run.worst_wait_ms(1.1, 4.0) <= 40
