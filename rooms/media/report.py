"""Plain-data reports of the media plane (for /internal/media-stats/ and the benchmarks).

Built where the hub lives (its thread, or the media worker process) and returned as dicts,
so they cross a thread or a process boundary as they are.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable

from .hub import MediaHub, RoomMedia
from .mixer import MixerStats
from .player import MediaPlayer

PERCENTILES = (50, 95, 99)


def hub_report(hub: MediaHub) -> list[dict]:
    return [room_report(key, media) for key, media in hub.room_media()]


def room_report(key: Hashable, media: RoomMedia) -> dict:
    peers = list(media.peers.values())
    tracks = [peer.track for peer in peers if peer.track is not None]
    return {
        "room": str(key),
        "peers": len(peers),
        "connected_peers": sum(peer.connection_state == "connected" for peer in peers),
        "audible": len(media.audible),
        "encoders": media.mixer.encoder_count,
        # The adaptive playout delay each audible speaker is played with (20-60 ms).
        "playout_targets_ms": [p.playout.target_ms for p in peers if p.pid in media.audible],
        "mixer": mixer_report(media.mixer.stats),
        "playback": playback_report(media.player),
        "tracks": {
            "queued": sum(t.queued for t in tracks),
            "sent": sum(t.sent for t in tracks),
            "dropped": sum(t.dropped for t in tracks),
            "direct": sum(t.direct for t in tracks),
        },
    }


def playback_report(player: MediaPlayer | None) -> dict | None:
    if player is None:
        return None
    report = player.report()
    return {
        "key": report.key,
        "state": report.state,
        "position_ms": report.position_ms,
        "duration_ms": report.duration_ms,
        "frames": player.stats.frames,
        "underruns": player.stats.underruns,
        "read_ahead_frames": player.queued,
    }


def mixer_report(stats: MixerStats) -> dict:
    ticks = max(stats.ticks, 1)
    return {
        "ticks": stats.ticks,
        "late_ticks": stats.late_ticks,
        "resyncs": stats.resyncs,
        "skipped_ticks": stats.skipped_ticks,
        "encodes": stats.encodes,
        "encodes_per_tick": stats.encodes / ticks,
        "encodes_last_tick": stats.encodes_last_tick,
        "max_encodes_per_tick": stats.max_encodes_per_tick,
        "tick_ms_mean": 1000 * stats.tick_seconds / ticks,
        "tick_ms_max": 1000 * stats.max_tick_seconds,
        # Arrival of the speaker's packet -> the mix holding it is queued / sent.
        "queued_latency_ms": latency_report(stats.queued_latency),
        "sent_latency_ms": latency_report(stats.sent_latency),
    }


def latency_report(samples: Iterable[float]) -> dict:
    values = sorted(samples)
    report: dict = {"n": len(values)}
    for p in PERCENTILES:
        report[f"p{p}"] = (
            1000 * values[min(len(values) - 1, len(values) * p // 100)] if values else None
        )
    return report


def process_report(hub: MediaHub | None = None) -> dict:
    """RSS and CPU times of the calling process, from /proc (Linux); only the pid elsewhere.

    Takes (and ignores) a hub so that it can be asked of the media worker with `query`.
    """
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except OSError:
        return {"pid": os.getpid()}
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "pid": os.getpid(),
        "rss_bytes": resident_pages * os.sysconf("SC_PAGE_SIZE"),
        # stat fields 14, 15 (utime, stime) and 20 (threads); the split starts at field 3.
        "cpu_user_s": int(fields[11]) / ticks,
        "cpu_system_s": int(fields[12]) / ticks,
        "threads": int(fields[17]),
    }
