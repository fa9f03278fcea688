"""`/internal/media-stats/`: what the media engine of this process is doing, as JSON.

For benchmarks (bench/room_load.py) and operators on the machine itself. Off unless
`LIVEAUDIO_MEDIA_STATS` is set, and even then only loopback callers get an answer: the
figures say how many people are in which room, which is nobody else's business.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Hashable, Iterable

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from rooms.media.hub import RoomMedia
from rooms.media.mixer import MixerStats
from rooms.rtc import media_hub

PERCENTILES = (50, 95, 99)


@require_GET
async def media_stats(request: HttpRequest) -> JsonResponse:
    if not settings.LIVEAUDIO_MEDIA_STATS or not _is_loopback(request.META.get("REMOTE_ADDR")):
        raise Http404
    return JsonResponse({"hub": await _hub_report(), "process": process_report()})


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


async def _hub_report() -> dict:
    # Asking must not build an engine (and patch ICE) in a process that never had one.
    if media_hub.cache_info().currsize == 0 or not media_hub().running:
        return {"counts": {"rooms": 0, "peers": 0, "level_listeners": 0}, "rooms": []}
    engine = media_hub()
    # Built on the media loop, so the hub's dicts are never read while they change.
    rooms = await engine.call(
        lambda: [room_report(key, media) for key, media in engine.room_media()]
    )
    return {"counts": engine.counts(), "rooms": rooms}


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
        "tracks": {
            "queued": sum(t.queued for t in tracks),
            "sent": sum(t.sent for t in tracks),
            "dropped": sum(t.dropped for t in tracks),
        },
    }


def mixer_report(stats: MixerStats) -> dict:
    ticks = max(stats.ticks, 1)
    return {
        "ticks": stats.ticks,
        "late_ticks": stats.late_ticks,
        "resyncs": stats.resyncs,
        "encodes": stats.encodes,
        "encodes_per_tick": stats.encodes / ticks,
        "encodes_last_tick": stats.encodes_last_tick,
        "max_encodes_per_tick": stats.max_encodes_per_tick,
        "tick_ms_mean": 1000 * stats.tick_seconds / ticks,
        "tick_ms_max": 1000 * stats.max_tick_seconds,
        # Arrival of the speaker's packet -> the mix holding it is queued / handed to aiortc.
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


def process_report() -> dict:
    """RSS and CPU times of this process, from /proc (Linux); empty elsewhere."""
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
