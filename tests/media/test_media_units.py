"""The mixer, playout buffer and levels on their own: no network, no clock."""

from __future__ import annotations

import numpy as np
import pytest

from rooms.media import PlayoutBuffer, PlayoutFrame, RoomMixer, rms_level
from rooms.media.codec import FRAME_SAMPLES, SAMPLE_RATE, new_opus_encoder, pcm_frame
from rooms.media.levels import frame_dbov
from rooms.media.mixer import soft_limit
from rooms.media.subscribers import AudibleMemory


def tone(frequency: float, tick: int, amplitude: int = 6000) -> np.ndarray:
    n = np.arange(tick * FRAME_SAMPLES, (tick + 1) * FRAME_SAMPLES)
    return (amplitude * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)).astype(np.int16)


class ToneSource:
    """A FrameSource that always has a frame ready."""

    def __init__(self, frequency: float, amplitude: int = 6000) -> None:
        self.frequency, self.amplitude, self.tick = frequency, amplitude, 0
        self.cleared = 0

    def pull(self) -> PlayoutFrame:
        self.tick += 1
        return PlayoutFrame(pcm=tone(self.frequency, self.tick, self.amplitude), arrival=None)

    def clear(self) -> None:
        self.cleared += 1


def opus_packets(count: int) -> list[bytes]:
    encoder = new_opus_encoder()
    return [
        bytes(p) for i in range(count) for p in encoder.encode(pcm_frame(tone(440, i), i * 960))
    ]


@pytest.mark.asyncio
async def test_listeners_of_the_same_mix_get_the_same_packet_objects() -> None:
    mixer = RoomMixer()
    tracks = {pid: mixer.add_participant(pid) for pid in ("A", "B", "D")}
    mixer.attach_source("A", ToneSource(440))
    mixer.set_audible("A", True)
    mixer.tick()
    assert mixer.encoder_count == 2  # A hears nobody; B and D hear A
    assert mixer.stats.encodes == 2
    assert (await tracks["B"].recv()) is (await tracks["D"].recv())
    assert (await tracks["A"].recv()) is not None
    await mixer.stop()


@pytest.mark.asyncio
async def test_inaudible_sources_are_cleared_not_mixed() -> None:
    mixer = RoomMixer()
    mixer.add_participant("X")
    source = ToneSource(880)
    mixer.attach_source("X", source)
    mixer.tick()
    assert source.tick == 0 and source.cleared == 1
    await mixer.stop()


@pytest.mark.asyncio
async def test_a_slow_listener_loses_its_oldest_packets_only() -> None:
    mixer = RoomMixer(max_queued=3)
    slow = mixer.add_participant("slow")
    for _ in range(10):
        mixer.tick()
    assert slow.dropped == 7
    assert (await slow.recv()).pts == 8 * FRAME_SAMPLES  # the 8th tick's packet
    await mixer.stop()


@pytest.mark.asyncio
async def test_levels_are_reported_about_eight_times_a_second() -> None:
    reports: list[dict[str, float]] = []
    mixer = RoomMixer(on_levels=reports.append)
    mixer.add_participant("A")
    mixer.attach_source("A", ToneSource(440, amplitude=16384))
    mixer.set_audible("A", True)
    for _ in range(50):  # one second of ticks
        mixer.tick()
    assert len(reports) == 8
    assert reports[-1]["A"] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    await mixer.stop()


def test_loud_sums_are_soft_limited_not_wrapped() -> None:
    loud = tone(440, 0, amplitude=30000).astype(np.float32)
    mixed = soft_limit(loud + loud)
    assert mixed.dtype == np.int16
    assert np.all(np.sign(mixed) == np.sign(loud))  # wrap-around would flip signs
    assert np.abs(mixed).max() <= 32767
    quiet = tone(440, 0, amplitude=1000).astype(np.float32)
    assert np.array_equal(soft_limit(quiet), quiet.astype(np.int16))


def test_rms_and_dbov_levels() -> None:
    assert rms_level(np.zeros(960, dtype=np.int16)) == 0.0
    full = tone(1000, 0, amplitude=32767)
    assert rms_level(full) == pytest.approx(1 / np.sqrt(2), rel=0.01)
    assert frame_dbov(pcm_frame(full, 0)) == -3


def test_playout_waits_for_its_target_then_plays_in_timestamp_order() -> None:
    packets = opus_packets(4)
    buffer = PlayoutBuffer(target_ms=40)
    buffer.push(packets[1], 1 * 960 + 1000)  # reordered on the way
    assert buffer.pull() is None  # 20 ms buffered: still priming
    buffer.push(packets[0], 0 * 960 + 1000)
    buffer.push(packets[2], 2 * 960 + 1000)
    frames = [buffer.pull() for _ in range(3)]
    assert all(f is not None and not f.concealed for f in frames)
    assert buffer.stats.played == 3


def test_a_lost_packet_is_concealed_without_adding_delay() -> None:
    packets = opus_packets(30)
    buffer = PlayoutBuffer(target_ms=40)
    buffer.push(packets[0], 0)
    delays = []
    for i in range(1, 30):
        if i != 10:  # packet 10 is lost; 11 arrives as usual
            buffer.push(packets[i], i * 960)
        frame = buffer.pull()
        assert frame is not None
        delays.append(buffer.buffered_ms)
    assert buffer.stats.concealed == 1
    assert max(delays[12:]) <= 40  # back at the target straight after the loss
    buffer.push(packets[10], 10 * 960)  # the straggler arrives far too late
    assert buffer.stats.late == 1


def test_a_burst_is_trimmed_back_to_the_target() -> None:
    packets = opus_packets(20)
    buffer = PlayoutBuffer(target_ms=40, max_ms=100)
    for i in range(20):  # 400 ms arrive at once
        buffer.push(packets[i], i * 960)
    assert buffer.pull() is not None
    assert buffer.buffered_ms <= 40
    assert buffer.stats.skipped > 0


def test_timestamps_wrap_around_without_a_glitch() -> None:
    packets = opus_packets(6)
    buffer = PlayoutBuffer(target_ms=40)
    start = (1 << 32) - 2 * 960
    buffer.push(packets[0], start)
    frames = []
    for i in range(1, 6):
        buffer.push(packets[i], (start + i * 960) & 0xFFFFFFFF)
        frames.append(buffer.pull())
    assert all(f is not None and not f.concealed for f in frames)
    assert buffer.stats.resyncs == 0


# --- what the front ends send to the hub -----------------------------------------------------


def test_an_audible_set_is_sent_once_and_never_one_older_than_sent() -> None:
    memory = AudibleMemory()
    old, new = frozenset({"a", "c"}), frozenset({"c"})  # then the host muted A
    assert memory.changed("room", old, revision=4)
    assert memory.changed("room", new, revision=5)
    assert not memory.changed("room", new, revision=5)  # every socket asks: sent once
    # An offer's answer read the state before the mute, and comes after it: not sent,
    # even though an offer made the memory forget what was sent.
    memory.forget("room")
    assert not memory.changed("room", old, revision=4)
    assert memory.changed("room", new, revision=5)  # the room may be new: sent again
    assert memory.changed("room", old)  # no revision: unordered, as before
    assert memory.changed("other", old, revision=1)  # rooms are counted apart
