"""liveaudio's media engine: server-side WebRTC peers, playout, mixing (plain asyncio).

The Django/Channels consumer drives it through a `MediaFrontEnd`; nothing here imports
Django. Every patch of an aiortc, aioice or asyncio internal is in `patches`.
"""

from __future__ import annotations

from .engine import MediaEngine
from .errors import MediaError
from .frontend import MediaFrontEnd
from .hub import MediaHub
from .ice import rtc_configuration
from .levels import rms_level
from .mixer import MixerStats, RoomMixer
from .outbound import MixedAudioTrack
from .patches import (
    UnsupportedVersion,
    check_versions,
    install_fast_audio_level,
    restore_host_candidates,
    restrict_host_candidates_to_loopback,
)
from .peer import MediaPeer, validate_offer
from .player import MEDIA_SOURCE_ID, MediaPlayer, PlaybackReport, PlaybackSpec
from .playout import PlayoutBuffer, PlayoutFrame

__all__ = [
    "MEDIA_SOURCE_ID",
    "MediaEngine",
    "MediaError",
    "MediaFrontEnd",
    "MediaHub",
    "MediaPeer",
    "MediaPlayer",
    "MixedAudioTrack",
    "MixerStats",
    "PlaybackReport",
    "PlaybackSpec",
    "PlayoutBuffer",
    "PlayoutFrame",
    "RoomMixer",
    "UnsupportedVersion",
    "check_versions",
    "install_fast_audio_level",
    "restore_host_candidates",
    "restrict_host_candidates_to_loopback",
    "rms_level",
    "rtc_configuration",
    "validate_offer",
]
