"""`/internal/media-stats/`: what the media engine of this process is doing, as JSON.

For benchmarks (bench/room_load.py) and operators on the machine itself. Off unless
`LIVEAUDIO_MEDIA_STATS` is set, and even then only loopback callers get an answer: the
figures say how many people are in which room, which is nobody else's business.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from rooms.media import MediaFrontEnd
from rooms.media.remote import RemoteMedia
from rooms.media.report import hub_report, process_report
from rooms.media.worker import MediaProcess, hub_counts
from rooms.rtc import media_hub


@require_GET
async def media_stats(request: HttpRequest) -> JsonResponse:
    if not settings.LIVEAUDIO_MEDIA_STATS or not _is_loopback(request.META.get("REMOTE_ADDR")):
        raise Http404
    engine = _running_engine()
    if isinstance(engine, RemoteMedia):
        # Shared media workers: each is a process of its own, perhaps on another host.
        workers = await engine.workers_report()
        return JsonResponse({"workers": workers, "process": process_report()})
    report = {"hub": await _hub_report(engine), "process": process_report()}
    if isinstance(engine, MediaProcess):
        report["media_process"] = await engine.query(process_report)
    return JsonResponse(report)


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _running_engine() -> MediaFrontEnd | None:
    # Asking must not build an engine (and patch ICE) in a process that never had one.
    if media_hub.cache_info().currsize == 0 or not media_hub().running:
        return None
    return media_hub()


async def _hub_report(engine: MediaFrontEnd | None) -> dict:
    if engine is None:
        return {"counts": {"rooms": 0, "peers": 0, "level_listeners": 0}, "rooms": []}
    # Built where the hub runs, so its dicts are never read while they change.
    rooms = await engine.query(hub_report)
    counts = await engine.query(hub_counts)
    counts["level_listeners"] = engine.level_listener_count()
    return {"counts": counts, "rooms": rooms}
