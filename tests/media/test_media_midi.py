"""MIDI rendered by the real FluidSynth with Debian's General MIDI soundfont."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from rooms.media.midi import MidiError, render_midi
from tests.media_files import make_midi_file


def decoded(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples (int16 scale) and the file's own sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        frames = [out.to_ndarray()[0] for f in container.decode(stream) for out in mono.resample(f)]
        return np.concatenate(frames) * 32767, stream.rate


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_a_midi_file_renders_to_audio_pyav_reads(tmp_path: Path, suffix: str) -> None:
    src = make_midi_file(tmp_path / "tune.mid", seconds=3)
    dst = tmp_path / f"tune{suffix}"
    render_midi(src, dst)
    audio, rate = decoded(dst)
    assert rate == 48000
    assert audio.size / rate >= 3.0  # the note, then the piano's release
    note = audio[rate // 2 : 2 * rate]
    assert np.sqrt(np.mean(note**2)) > 300  # a piano is playing, not silence
    spectrum = np.abs(np.fft.rfft(note * np.hanning(note.size)))
    peaks = np.argsort(spectrum)[-5:] * rate / note.size
    assert abs(peaks[-1] - 440) < 5  # A4, the note the file plays


@pytest.mark.parametrize(
    "content",
    [b"", b"not a midi file", b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrkgarbage"],
)
def test_what_is_not_midi_is_a_midi_error_and_leaves_no_file(
    tmp_path: Path, content: bytes
) -> None:
    src = tmp_path / "bad.mid"
    src.write_bytes(content)
    dst = tmp_path / "bad.wav"
    with pytest.raises(MidiError):
        render_midi(src, dst)
    assert not dst.exists()
