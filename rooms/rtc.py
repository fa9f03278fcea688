"""The Django side of the media plane: the process's MediaHub, built from settings, and the
rule that decides who is heard."""

from __future__ import annotations

from functools import cache

from aiortc import RTCIceServer
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rooms.media import MediaEngine, MediaFrontEnd
from rooms.media.cluster import Registry
from rooms.media.engine import DEFAULT_SWITCH_INTERVAL
from rooms.media.patches import install_server_patches
from rooms.media.remote import RemoteMedia
from rooms.media.worker import MediaProcess, WorkerConfig
from rooms.selectors import RoomState


def ice_servers() -> list[RTCIceServer]:
    return [RTCIceServer(**server) for server in settings.LIVEAUDIO_ICE_SERVERS]


@cache
def media_hub() -> MediaFrontEnd:
    """One media engine per server process, made on first use. Close it with `close()`.

    With `LIVEAUDIO_MEDIA_WORKERS=shared` (scale-out) it drives the deployment's media
    workers (`RemoteMedia`: mixers and relays of their own, found in Redis). Otherwise its
    hub runs in a media worker process of its own (`MediaProcess`), so
    nothing daphne does delays the mixing clock, not even the GIL; with
    `LIVEAUDIO_MEDIA_PROCESS=0` it runs on a thread of this process (`MediaEngine`), where
    tests can inspect its peers directly. Either refuses to start (`UnsupportedVersion`)
    with an aiortc or aioice that `rooms.media.patches` was not written for.
    """
    if settings.LIVEAUDIO_MEDIA_WORKERS == "shared":
        if not settings.LIVEAUDIO_REDIS_URL:
            raise ImproperlyConfigured("LIVEAUDIO_MEDIA_WORKERS=shared needs LIVEAUDIO_REDIS_URL")
        return RemoteMedia(
            Registry(settings.LIVEAUDIO_REDIS_URL, settings.LIVEAUDIO_REDIS_PREFIX),
            get_channel_layer(),
        )
    if settings.LIVEAUDIO_MEDIA_WORKERS != "own":
        raise ImproperlyConfigured("LIVEAUDIO_MEDIA_WORKERS is 'own' or 'shared'")
    if settings.LIVEAUDIO_MEDIA_PROCESS:
        return MediaProcess(
            WorkerConfig(
                ice_servers=settings.LIVEAUDIO_ICE_SERVERS,
                connect_timeout=settings.LIVEAUDIO_MEDIA_CONNECT_TIMEOUT,
                loopback_only=settings.LIVEAUDIO_ICE_LOOPBACK_ONLY,
            )
        )
    install_server_patches(loopback_only=settings.LIVEAUDIO_ICE_LOOPBACK_ONLY)
    return MediaEngine(
        ice_servers=ice_servers(),
        connect_timeout=settings.LIVEAUDIO_MEDIA_CONNECT_TIMEOUT,
        switch_interval=getattr(
            settings, "LIVEAUDIO_MEDIA_SWITCH_INTERVAL", DEFAULT_SWITCH_INTERVAL
        ),
    )


def seated_user_ids(state: RoomState) -> set[str]:
    """Everyone on a seat, microphone on or off: the scale-out mode keeps their peers on the
    room's mixer (a relay's listeners are never heard, `rooms/media/relay.py`)."""
    return {seat.user_id for row in state.rows for seat in row if seat.user_id}


def audible_user_ids(state: RoomState) -> set[str]:
    """Only a user on a seat with their microphone on is mixed into the room.

    Kicked, banned and departed users have no seat; a host mute turns the microphone off.
    Whatever a browser sends, nobody else is ever heard. A speaker whose socket is
    reconnecting keeps their seat for the grace period, and so keeps being heard: their
    audio does not travel over the socket.
    """
    return {seat.user_id for row in state.rows for seat in row if seat.user_id and seat.mic_on}
