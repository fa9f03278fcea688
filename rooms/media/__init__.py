"""liveaudio's media engine: server-side WebRTC peers, playout, mixing (plain asyncio).

The Django/Channels consumer drives it; nothing here imports Django.
"""

from __future__ import annotations

from .engine import MediaEngine
from .errors import MediaError
from .hub import MediaHub
from .ice import restore_host_candidates, restrict_host_candidates_to_loopback, rtc_configuration
from .levels import install_fast_audio_level, rms_level
from .mixer import MixerStats, RoomMixer
from .outbound import MixedAudioTrack
from .peer import MediaPeer, validate_offer
from .playout import PlayoutBuffer, PlayoutFrame

__all__ = [
    "MediaEngine",
    "MediaError",
    "MediaHub",
    "MediaPeer",
    "MixedAudioTrack",
    "MixerStats",
    "PlayoutBuffer",
    "PlayoutFrame",
    "RoomMixer",
    "install_fast_audio_level",
    "restore_host_candidates",
    "restrict_host_candidates_to_loopback",
    "rms_level",
    "rtc_configuration",
    "validate_offer",
]
