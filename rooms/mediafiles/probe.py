"""Is this file something the media worker can play? Asked with PyAV before a file is kept.

A container that opens is not enough: a renamed text file may open as some raw format, a
truncated WAV keeps its header's length. So the probe needs an audio stream and a duration,
decodes the first frames, and decodes again near the end: a file cut short has no end.
Only a few frames are decoded, however long the file: a probe costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from rooms.errors import ServiceError
from rooms.media.player import duration_ms_of

FRAMES_AT_START = 5
END_MARGIN_MS = 1500  # decode from this far before the end...
END_TOLERANCE_MS = 3000  # ...and find a frame ending at most this far before it


class ProbeError(ServiceError):
    """A refused file; ``code`` says why (docs/protocol.md lists them)."""


@dataclass(frozen=True)
class Probed:
    kind: str  # "pureAudio" or "video"
    duration_ms: int
    info: dict = field(default_factory=dict)  # {width, height, frameRate}; zeros for audio


def probe(path: Path, *, max_duration_ms: int) -> Probed:
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("media_empty", "The file is empty.")
    _check_riff_length(path, size)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _probe_open(container, max_duration_ms)
    except ProbeError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise ProbeError(
            "media_unreadable", "This file is not an audio or video file, or it is damaged."
        ) from exc


def _probe_open(container: av.container.InputContainer, max_duration_ms: int) -> Probed:
    if not container.streams.audio:
        raise ProbeError("media_no_audio", "This file has no sound (no audio stream).")
    audio = container.streams.audio[0]
    duration_ms = duration_ms_of(container, audio)  # as the player will count it
    if duration_ms <= 0:
        raise ProbeError("media_unreadable", "The file's length cannot be read.")
    if duration_ms > max_duration_ms:
        limit = _minutes(max_duration_ms)
        raise ProbeError("media_too_long", f"The file is longer than {limit}.")
    if _decode_frames(container, audio, FRAMES_AT_START) == 0:
        raise ProbeError("media_unreadable", "The file's sound cannot be decoded.")
    _check_end(container, audio, duration_ms)
    video = container.streams.video[0] if container.streams.video else None
    if video is None:
        return Probed("pureAudio", duration_ms, {"width": 0, "height": 0, "frameRate": 0})
    rate = video.average_rate or video.guessed_rate or 0
    info = {"width": video.width, "height": video.height, "frameRate": round(float(rate), 3)}
    return Probed("video", duration_ms, info)


def _decode_frames(
    container: av.container.InputContainer, audio: av.AudioStream, count: int
) -> int:
    decoded = 0
    for _frame in container.decode(audio):
        decoded += 1
        if decoded >= count:
            break
    return decoded


def _check_end(
    container: av.container.InputContainer, audio: av.AudioStream, duration_ms: int
) -> None:
    """Decode from shortly before the end: a file cut short (its header promising more than
    it holds) has no frames there."""
    if duration_ms <= END_MARGIN_MS * 2:
        return  # the first frames were the end
    target_ms = duration_ms - END_MARGIN_MS
    time_base = audio.time_base or Fraction(1, 1000)
    container.seek(int(Fraction(target_ms, 1000) / time_base), stream=audio, backward=True)
    last_end_ms = 0.0
    for frame in container.decode(audio):
        if frame.pts is not None and frame.time_base is not None:
            start = float(frame.pts * frame.time_base) * 1000
            last_end_ms = max(last_end_ms, start + frame.samples * 1000 / frame.sample_rate)
    if last_end_ms < duration_ms - END_TOLERANCE_MS:
        raise ProbeError(
            "media_truncated", "The file ends before its stated length: it is incomplete."
        )


def _check_riff_length(path: Path, size: int) -> None:
    """A WAV (RIFF) file states its length in its first bytes; FFmpeg plays a cut one as a
    shorter file without a word, so the cut is caught here."""
    with path.open("rb") as file:
        head = file.read(12)
    if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        stated = int.from_bytes(head[4:8], "little") + 8
        if stated > size:
            raise ProbeError(
                "media_truncated", "The file ends before its stated length: it is incomplete."
            )


def _minutes(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes" if seconds < 7200 else f"{seconds / 3600:g} hours"
