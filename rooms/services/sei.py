"""SEI, the seed's ``audioVideo.sendSEI``: a small JSON object that reaches every listener in
step with the sender's audio (``rooms.media.sei`` says how it keeps its place in time).

The rules, whatever the browser sends: the object is at most ``LIVEAUDIO_SEI_MAX_BYTES`` of
compact JSON; a ``main`` SEI comes from a user whose audio is in the mix (on a seat with the
microphone on, by the room state the socket last showed); a ``media`` SEI from someone the
room lets control the media player, while something is playing. Anyone else gets
``not_in_mix``. Nothing is stored.
"""

from __future__ import annotations

import json

from django.conf import settings

from rooms.models import Member, Room
from rooms.services.common import ServiceError
from rooms.services.media import may_control_media

STREAM_TYPES = ("main", "media")


def sei_text(data: dict) -> str:
    """The SEI object as the compact JSON every listener gets; refused past the size limit."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    size, limit = len(text.encode()), settings.LIVEAUDIO_SEI_MAX_BYTES
    if size > limit:
        raise ServiceError("sei_too_large", f"An SEI is at most {limit} bytes; this one is {size}.")
    return text


def sei_check_sender(
    *, member: Member, stream_type: str, audible: frozenset[str], media_playing: bool
) -> None:
    """Raise ``not_in_mix`` unless ``member``'s SEI goes with audio the room hears now."""
    if stream_type == "main":
        if member.user_id not in audible:
            raise ServiceError(
                "not_in_mix", "Only a speaker whose microphone is on can send an SEI."
            )
        return
    room = Room.objects.get(pk=member.room_id)
    if not may_control_media(member, room):
        raise ServiceError(
            "not_in_mix", "Only someone who may control the media player can send a media SEI."
        )
    if not media_playing:
        raise ServiceError("not_in_mix", "Nothing is playing: a media SEI needs the player on.")
