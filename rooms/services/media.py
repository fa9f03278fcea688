"""The room's media player: play, pause, resume, seek, volume, stop, and what the worker
reports back. Every change runs under the room's row lock, counts as a room change (its
revision, the state every socket gets) and reaches the media worker after the commit
(``rooms.player``).

Who may: ``config.mediaPlayer.rolesCanControl`` of the host's config (stored on the room
when a host joins; default the host, and a co-host standing in for one). ``actor=None`` is
an operator or the HTTP API. Errors: ``docs/protocol.md``.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from rooms import events, player, roles
from rooms.models import MediaFile, Member, Playback, PlayState, Room
from rooms.selectors import displayed_role
from rooms.services.common import (
    NotPermitted,
    ServiceError,
    active_member,
    has_host_permissions,
    lock_room,
    room_changed,
    seat_of,
)

DEFAULT_VOLUME = 30
LOADED = (PlayState.PLAYING, PlayState.PAUSING, PlayState.PLAY_ENDED, PlayState.LOAD_READY)


def may_control_media(member: Member, room: Room) -> bool:
    role = displayed_role(stored_role=member.role, seated=seat_of(member) is not None)
    return roles.can_control_media(
        role, host_permissions=has_host_permissions(member), roles=room.media_roles
    )


def require_media_control(actor: Member | None, room: Room) -> Member | None:
    """Inside the room's lock: the fresh actor, if they may control the player."""
    if actor is None:
        return None
    actor = active_member(actor)
    if actor.room_id != room.pk or not may_control_media(actor, room):
        raise NotPermitted("You may not control the media player in this room.")
    return actor


def playback_of(room: Room) -> Playback:
    """The room's player row, made on first use (under the room's lock)."""
    playback, _ = Playback.objects.get_or_create(
        room=room, defaults={"position_at": timezone.now(), "volume": DEFAULT_VOLUME}
    )
    return playback


def position_now(playback: Playback, duration_ms: int, now: datetime | None = None) -> int:
    """Where the playout is: ``position_ms`` at ``position_at``, moving on while playing."""
    position = playback.position_ms
    if playback.state == PlayState.PLAYING:
        elapsed = ((now or timezone.now()) - playback.position_at).total_seconds() * 1000
        position += max(0, int(elapsed))
        if playback.repeat and duration_ms > 0:
            position %= duration_ms
    return min(position, duration_ms)


def new_key() -> str:
    return secrets.token_hex(8)


def media_file_in(room: Room, media_id: str) -> MediaFile:
    found = MediaFile.objects.filter(room=room, media_id=media_id).first()
    if found is None:
        raise ServiceError("media_not_found", "There is no such media file in this room.")
    return found


# --- control ---------------------------------------------------------------------------------


def media_play(
    *, room: Room, actor: Member | None, media: MediaFile, repeat: bool = False
) -> Playback:
    """Play ``media`` (a file of this room) from the start, replacing whatever plays: two
    racing plays both run under the lock, one after the other, and the last one plays."""
    with transaction.atomic():
        room = lock_room(room)
        actor = require_media_control(actor, room)
        if not MediaFile.objects.filter(pk=media.pk, room=room).exists():
            raise ServiceError("media_not_found", "There is no such media file in this room.")
        playback = playback_of(room)
        playback.media, playback.state = media, PlayState.PLAYING
        playback.position_ms, playback.position_at = 0, timezone.now()
        playback.repeat, playback.key, playback.error = repeat, new_key(), ""
        playback.started_by = actor.user_id if actor else ""
        return _changed(room, playback, state_changed=True)


def media_pause(*, room: Room, actor: Member | None) -> Playback:
    with transaction.atomic():
        room, playback = _loaded(room, actor)
        if playback.state != PlayState.PLAYING:
            raise ServiceError("media_not_playing", "Nothing is playing.")
        _move(playback, position_now(playback, _duration(playback)), PlayState.PAUSING)
        return _changed(room, playback, state_changed=True)


def media_resume(*, room: Room, actor: Member | None) -> Playback:
    """Go on from the paused position (after a restart too: the key is then a new one)."""
    with transaction.atomic():
        room, playback = _loaded(room, actor)
        if playback.state not in (PlayState.PAUSING, PlayState.LOAD_READY):
            raise ServiceError("media_not_paused", "The media player is not paused.")
        _move(playback, playback.position_ms, PlayState.PLAYING)
        return _changed(room, playback, state_changed=True)


def media_seek(*, room: Room, actor: Member | None, millisecond: int) -> Playback:
    """A new playout from ``millisecond``; a paused player stays paused there, an ended one
    is paused there."""
    with transaction.atomic():
        room, playback = _loaded(room, actor)
        duration = _duration(playback)
        if not 0 <= millisecond <= duration:
            raise ServiceError(
                "media_bad_position", f"The position must be between 0 and {duration} ms."
            )
        state = PlayState.PAUSING if playback.state == PlayState.PLAY_ENDED else playback.state
        _move(playback, millisecond, state)
        playback.key = new_key()
        return _changed(room, playback, state_changed=state != PlayState.PLAYING)


def media_set_volume(*, room: Room, actor: Member | None, volume: int) -> Playback:
    """The room's media level (0-100, default 30): kept from one file to the next."""
    if not 0 <= volume <= 100:
        raise ServiceError("bad_request", "The volume must be between 0 and 100.")
    with transaction.atomic():
        room = lock_room(room)
        require_media_control(actor, room)
        playback = playback_of(room)
        if playback.volume == volume:
            return playback
        if playback.state == PlayState.PLAYING:  # keep the position exact across the save
            _move(playback, position_now(playback, _duration(playback)), PlayState.PLAYING)
        playback.volume = volume
        return _changed(room, playback, state_changed=False)


def media_stop(*, room: Room, actor: Member | None, destroy: bool = False) -> Playback:
    """Stop and unload (``noPlay``). ``destroy`` also resets the player: volume 30, no repeat."""
    with transaction.atomic():
        room = lock_room(room)
        require_media_control(actor, room)
        playback = playback_of(room)
        was = playback.state
        playback.media, playback.state, playback.key = None, PlayState.NO_PLAY, ""
        playback.position_ms, playback.position_at = 0, timezone.now()
        if destroy:
            playback.volume, playback.repeat = DEFAULT_VOLUME, False
        return _changed(room, playback, state_changed=was != PlayState.NO_PLAY)


# --- what the worker reports -----------------------------------------------------------------


def media_playout_ended(*, room: Room, key: str, error: str = "") -> bool:
    """The worker played ``key`` to its end, or failed mid-way (``error``): ``playEnded``,
    once, whichever process reports it first. A stale key (replaced meanwhile) changes
    nothing. Returns whether this call made the change."""
    with transaction.atomic():
        try:
            room = lock_room(room)
        except ServiceError:
            return False  # the room ended meanwhile
        playback = Playback.objects.filter(room=room).select_related("media").first()
        if playback is None or playback.key != key or playback.state != PlayState.PLAYING:
            return False
        _move(playback, _duration(playback), PlayState.PLAY_ENDED)
        playback.error = error[:500]
        extra = []
        if error:
            extra = [{"type": "media.onError", "code": "media_decode_failed", "message": error}]
        _changed(room, playback, state_changed=True, extra=extra)
        return True


def playbacks_pause_all() -> int:
    """Whatever is playing is paused where it had got to, with a new key (the worker that
    played it is gone: ``rooms.services.presence.playbacks_pause_after_restart``).
    ``resume`` goes on from there. Returns how many were paused."""
    paused = 0
    for room_pk in Playback.objects.filter(state=PlayState.PLAYING).values_list("room", flat=True):
        with transaction.atomic():
            room = Room.objects.select_for_update().get(pk=room_pk)
            playback = Playback.objects.select_related("media").get(room=room)
            if playback.state != PlayState.PLAYING:
                continue
            _move(playback, position_now(playback, _duration(playback)), PlayState.PAUSING)
            playback.key = new_key()
            _changed(room, playback, state_changed=True)
            paused += 1
    return paused


# --- shared ----------------------------------------------------------------------------------


def _loaded(room: Room, actor: Member | None) -> tuple[Room, Playback]:
    room = lock_room(room)
    require_media_control(actor, room)
    playback = playback_of(room)
    if playback.state not in LOADED or playback.media is None:
        raise ServiceError("media_not_playing", "No media is loaded.")
    return room, playback


def _duration(playback: Playback) -> int:
    return playback.media.duration_ms if playback.media else 0


def _move(playback: Playback, position_ms: int, state: str) -> None:
    playback.position_ms, playback.position_at, playback.state = position_ms, timezone.now(), state


def _changed(
    room: Room, playback: Playback, *, state_changed: bool, extra: list[dict] | None = None
) -> Playback:
    playback.save()
    room_events = list(extra or [])
    if state_changed:
        room_events.insert(
            0,
            {
                "type": "media.onPlayStateChanged",
                "state": playback.state,
                "mediaID": playback.media.media_id if playback.media else None,
                "startedBy": playback.started_by or None,
            },
        )
    room_changed(room, room_events)
    events.after_commit(lambda: player.apply_stored(room.pk))
    return playback
