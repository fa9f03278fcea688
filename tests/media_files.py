"""Real media files for tests: tones encoded by PyAV, and a Standard MIDI File written by hand.

The tests of the media player need files a real decoder reads (no fakes of the thing under test):
`make_tone_file` encodes a sequence of sine tones into the container its suffix names, so a
listener can tell by frequency where in the file the playout is (500 Hz, then 1 kHz after 5 s).
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# suffix -> (container format, audio codec, sample format, layout, sample rate)
AUDIO_CODECS: dict[str, tuple[str, str, str, str, int]] = {
    ".wav": ("wav", "pcm_s16le", "s16", "mono", 48000),
    ".mp3": ("mp3", "libmp3lame", "s16p", "mono", 48000),
    ".mp4": ("mp4", "aac", "fltp", "mono", 48000),
    ".ogg": ("ogg", "libopus", "s16", "mono", 48000),
    ".aac": ("adts", "aac", "fltp", "mono", 48000),
}
DEFAULT_SEGMENTS: tuple[tuple[float, float], ...] = ((500.0, 5.0), (1000.0, 5.0))
VIDEO_SIZE = (64, 48)
VIDEO_RATE = 10


def tone_samples(
    segments: tuple[tuple[float, float], ...], amplitude: float, rate: int
) -> np.ndarray:
    """The float32 samples of the tones one after the other (phase kept across segments)."""
    parts, phase = [], 0.0
    for frequency, seconds in segments:
        n = round(seconds * rate)
        steps = phase + 2 * np.pi * frequency * np.arange(n) / rate
        parts.append(amplitude * np.sin(steps))
        phase = float(phase + 2 * np.pi * frequency * n / rate) % (2 * np.pi)
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def make_tone_file(
    path: Path,
    *,
    segments: tuple[tuple[float, float], ...] = DEFAULT_SEGMENTS,
    amplitude: float = 0.5,
    video: bool = False,
) -> Path:
    """Encode `segments` ((Hz, seconds), ...) at `amplitude` (of full scale) into `path`.

    The container follows the suffix (.wav .mp3 .mp4 .ogg .aac); `video=True` (.mp4 only) adds
    a small moving-gray video track of the same length, as a phone's recording would have.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_CODECS:
        raise ValueError(f"no tone encoder for {suffix!r}; use one of {sorted(AUDIO_CODECS)}")
    if video and suffix != ".mp4":
        raise ValueError("a video track is only made for .mp4")
    fmt, codec, sample_format, layout, rate = AUDIO_CODECS[suffix]
    samples = tone_samples(segments, amplitude, rate)
    with av.open(str(path), "w", format=fmt) as container:
        audio = container.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(audio, av.AudioStream)
        audio.format = sample_format
        video_stream = container.add_stream("mpeg4", rate=VIDEO_RATE) if video else None
        if video_stream is not None:
            assert isinstance(video_stream, av.VideoStream)
            video_stream.width, video_stream.height = VIDEO_SIZE
            video_stream.pix_fmt = "yuv420p"
        per_frame = rate if codec.startswith("pcm_") else 1024
        encode_audio(container, audio, samples, rate, per_frame=per_frame)
        if video_stream is not None:
            encode_video(container, video_stream, len(samples) / rate)
    return path


def encode_audio(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    samples: np.ndarray,
    rate: int,
    *,
    per_frame: int = 1024,
) -> None:
    """Encode in frames of `per_frame` samples (AAC takes 1024 only; PCM takes any, and a
    second a frame saves 20,000 frames of a 420 s WAV, 0.5 s), then flush."""
    pcm = np.clip(samples * 32767, -32768, 32767).astype(np.int16)
    for start in range(0, len(pcm), per_frame):
        chunk = pcm[start : start + per_frame].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def encode_video(
    container: av.container.OutputContainer, stream: av.VideoStream, seconds: float
) -> None:
    """A gray frame whose brightness changes each second, VIDEO_RATE frames a second."""
    width, height = VIDEO_SIZE
    for index in range(max(1, round(seconds * VIDEO_RATE))):
        shade = 64 + (index // VIDEO_RATE) * 16 % 128
        image = np.full((height, width, 3), shade, np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_midi_file(path: Path, seconds: float = 3) -> Path:
    """A format-0 Standard MIDI File: a piano playing A4 (440 Hz) for `seconds`, then silence.

    Written by hand (header chunk, one track chunk) so no MIDI library is needed to test MIDI.
    """
    ticks_per_quarter = 480  # at the default 120 bpm: 960 ticks a second
    length = max(1, round(seconds * 960))
    events = b"".join(
        [
            variable_length(0) + b"\xff\x51\x03" + (500000).to_bytes(3, "big"),  # 120 bpm
            variable_length(0) + b"\xc0\x00",  # program 0: acoustic grand piano
            variable_length(0) + b"\x90\x45\x64",  # note on, A4, velocity 100
            variable_length(length) + b"\x80\x45\x40",  # note off
            variable_length(0) + b"\xff\x2f\x00",  # end of track
        ]
    )
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter)
    track = b"MTrk" + struct.pack(">I", len(events)) + events
    path = Path(path)
    path.write_bytes(header + track)
    return path


def variable_length(value: int) -> bytes:
    """MIDI's variable-length quantity: 7 bits a byte, the high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
