"""Speaking levels, computed with numpy instead of aiortc's per-sample Python loop
(`patches.install_fast_audio_level` puts `frame_dbov` in aiortc's place)."""

from __future__ import annotations

import math

import numpy as np
from av import AudioFrame

FULL_SCALE = 32767.0
MIN_DBOV = -127


def rms_level(pcm: np.ndarray) -> float:
    """RMS of int16 PCM scaled to 0..1 (1 = full-scale square wave)."""
    if pcm.size == 0:
        return 0.0
    samples = pcm.astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) / FULL_SCALE


def level_to_dbov(level: float) -> int:
    """RFC 6465 audio level in dBov (0 loudest, -127 silence)."""
    if level <= 0.0:
        return MIN_DBOV
    return round(min(0.0, max(float(MIN_DBOV), 20.0 * math.log10(level))))


def frame_dbov(frame: AudioFrame) -> int:
    """Drop-in replacement for `aiortc.rtp.compute_audio_level_dbov`."""
    pcm = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16)
    return level_to_dbov(rms_level(pcm))
