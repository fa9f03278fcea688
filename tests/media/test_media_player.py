"""MediaPlayer on its own: real files decoded by PyAV, pulled the way the mixer pulls them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from media_helpers import player_threads, wait_until

from rooms.media.codec import FRAME_SAMPLES, SAMPLE_RATE
from rooms.media.player import READ_AHEAD_FRAMES, MediaPlayer, PlaybackReport, PlaybackSpec
from tests.media_files import make_tone_file

pytestmark = pytest.mark.asyncio

FORMATS = (".wav", ".mp3", ".mp4", ".ogg", ".aac")


def spec(path: Path, key: str = "k", **changes: object) -> PlaybackSpec:
    values: dict = {"start_ms": 0, "paused": False, "repeat": False, "volume": 100}
    values.update(changes)
    return PlaybackSpec(key=key, path=str(path), **values)


async def pull_audio(player: MediaPlayer, seconds: float, timeout: float = 10.0) -> np.ndarray:
    """Up to `seconds` of what the mixer would get (less if the playout ends first)."""
    frames: list[np.ndarray] = []
    deadline = time.monotonic() + timeout
    while len(frames) * FRAME_SAMPLES < seconds * SAMPLE_RATE:
        frame = player.pull()
        if frame is not None:
            frames.append(frame.pcm)
        elif player.report().state != "playing" or time.monotonic() > deadline:
            break
        else:
            await asyncio.sleep(0.005)  # the decoder thread is filling the read-ahead
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float32) * np.hanning(pcm.size)))
    return float(np.argmax(spectrum)) * SAMPLE_RATE / pcm.size


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


async def stopped(player: MediaPlayer) -> None:
    await player.close()
    assert not player.running


@pytest.mark.parametrize("suffix", FORMATS)
async def test_every_format_plays_500_hz_then_1_khz_and_seeks_exactly(
    tmp_path: Path, suffix: str
) -> None:
    path = make_tone_file(tmp_path / f"tone{suffix}")
    player = MediaPlayer(spec(path))
    start = await pull_audio(player, 0.5)
    assert dominant_hz(start) == pytest.approx(500, abs=10)
    await stopped(player)
    # A seek is a new playout at start_ms: 1 kHz from its first frame, position from 6 s.
    player = MediaPlayer(spec(path, key="k2", start_ms=6000))
    after_seek = await pull_audio(player, 0.5)
    assert dominant_hz(after_seek) == pytest.approx(1000, abs=10)
    assert 6400 <= player.report().position_ms <= 6600
    await stopped(player)


async def test_a_seek_lands_on_the_sample_the_tone_changes_at(tmp_path: Path) -> None:
    path = make_tone_file(tmp_path / "tone.wav")
    player = MediaPlayer(spec(path, start_ms=4900))
    audio = await pull_audio(player, 0.2)
    assert dominant_hz(audio[: SAMPLE_RATE // 10]) == pytest.approx(500, abs=10)
    assert dominant_hz(audio[SAMPLE_RATE // 10 :]) == pytest.approx(1000, abs=10)
    await stopped(player)


async def test_the_end_is_play_ended_at_the_duration_and_the_thread_ends(tmp_path: Path) -> None:
    path = make_tone_file(tmp_path / "short.mp3", segments=((500, 1.0),))
    reports: list[PlaybackReport] = []
    player = MediaPlayer(spec(path), reports.append)
    audio = await pull_audio(player, 5.0)
    assert 0.95 <= audio.size / SAMPLE_RATE <= 1.1
    await wait_until(lambda: reports[-1].state == "playEnded")
    assert reports[-1].position_ms >= 1000 and reports[-1].duration_ms == 1000
    await wait_until(lambda: not player.running)
    assert player.pull() is None


async def test_repeat_starts_the_file_again(tmp_path: Path) -> None:
    path = make_tone_file(tmp_path / "short.wav", segments=((500, 0.5), (1000, 0.5)))
    player = MediaPlayer(spec(path, repeat=True))
    audio = await pull_audio(player, 2.5)
    assert audio.size == round(2.5 * SAMPLE_RATE)
    second_lap = audio[SAMPLE_RATE : SAMPLE_RATE + SAMPLE_RATE // 2]
    assert dominant_hz(second_lap) == pytest.approx(500, abs=10)
    assert player.stats.loops >= 2
    assert player.report().state == "playing" and player.report().position_ms == 500
    await stopped(player)


async def test_pause_holds_frames_and_position_and_volume_scales_at_once(tmp_path: Path) -> None:
    path = make_tone_file(tmp_path / "tone.wav", amplitude=0.5)
    reports: list[PlaybackReport] = []
    player = MediaPlayer(spec(path, volume=80), reports.append)
    loud = await pull_audio(player, 0.4)
    player.update(spec(path, paused=True, volume=80))
    assert reports[-1].state == "pausing"
    held = player.report().position_ms
    assert [player.pull() for _ in range(10)] == [None] * 10
    assert player.report().position_ms == held == 400
    player.update(spec(path, volume=10))
    quiet = await pull_audio(player, 0.4)
    assert reports[-1].state == "playing"
    assert rms(loud) / rms(quiet) == pytest.approx(8.0, rel=0.01)
    assert rms(loud) == pytest.approx(0.8 * 0.5 * 32767 / np.sqrt(2), rel=0.01)
    await stopped(player)


@pytest.mark.parametrize(
    ("suffix", "why"), [(".aac", "decode error"), (".mp3", "ends before its duration")]
)
async def test_a_truncated_file_fails_after_what_it_could_play(
    tmp_path: Path, suffix: str, why: str
) -> None:
    whole = make_tone_file(tmp_path / f"whole{suffix}").read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    reports: list[PlaybackReport] = []
    player = MediaPlayer(spec(path), reports.append)
    audio = await pull_audio(player, 20.0)
    assert 4.0 <= audio.size / SAMPLE_RATE <= 5.5, why
    await wait_until(lambda: reports[-1].state == "failed")
    assert "truncated or damaged" in reports[-1].error
    await wait_until(lambda: not player.running)


@pytest.mark.parametrize("content", [b"", b"not media at all" * 100])
async def test_a_file_that_is_not_media_fails_at_once(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.mp3"
    path.write_bytes(content)
    player = MediaPlayer(spec(path))
    await pull_audio(player, 1.0)
    assert player.report().state == "failed"
    assert player.report().error.startswith("The file could not be opened")
    await wait_until(lambda: not player.running)


async def test_a_stopped_player_with_a_full_read_ahead_ends_its_thread(tmp_path: Path) -> None:
    path = make_tone_file(tmp_path / "tone.ogg")
    players = [MediaPlayer(spec(path, key=str(i), paused=i % 2 == 0)) for i in range(4)]
    await wait_until(lambda: all(p.queued == READ_AHEAD_FRAMES for p in players))
    assert player_threads() == 4
    for player in players:
        await stopped(player)
    assert player_threads() == 0


async def test_samples_past_full_scale_are_clipped_never_wrapped(tmp_path: Path) -> None:
    """Decoded audio may overshoot 1.0 (lossy codecs do, float WAVs may): at volume 100 a
    loud positive half-wave must stay positive, not wrap to -32768."""
    import av

    path = tmp_path / "hot.wav"
    rate, seconds = 48_000, 1.0
    t = np.arange(int(rate * seconds)) / rate
    samples = (1.5 * np.abs(np.sin(2 * np.pi * 100 * t))).astype(np.float32)  # 0 .. 1.5
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_f32le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    player = MediaPlayer(spec(path))
    audio = await pull_audio(player, 0.5)
    assert audio.size and int(audio.min()) >= -1, "a sample wrapped around to negative"
    assert int(audio.max()) == 32767
    await stopped(player)
