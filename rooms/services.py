"""Every write and every rule of a room. Entry points (socket, admin, views) call these.

Each function runs in one transaction and queues its events with ``transaction.on_commit``,
so nobody is told of a change that did not happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms import events
from rooms.models import App, Member, Message, Role, Room, Seat
from rooms.selectors import has_host_permissions, room_state
from rooms.tokens import TokenClaims

DEFAULT_SEAT_ROWS = [4, 4]
DEFAULT_HOST_INDEXES = [0]
MAX_SEATS = 64


class ServiceError(Exception):
    """A refused request: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotPermitted(ServiceError):
    def __init__(self, message: str = "You are not permitted to do that.") -> None:
        super().__init__("not_permitted", message)


@dataclass(frozen=True)
class JoinResult:
    member: Member
    replaced_channel: str | None  # the socket of the same user's older tab, if any


# --- rooms ----------------------------------------------------------------------------------


def room_create(
    *,
    app: App,
    room_id: str,
    title: str = "",
    created_by: str = "",
    seat_rows: list[int] | None = None,
    host_indexes: list[int] | None = None,
) -> Room:
    rows = seat_rows if seat_rows is not None else DEFAULT_SEAT_ROWS
    hosts = host_indexes if host_indexes is not None else DEFAULT_HOST_INDEXES
    if not rows or any(not isinstance(n, int) or n < 1 for n in rows) or sum(rows) > MAX_SEATS:
        raise ServiceError("bad_layout", f"Seat rows must be positive counts, {MAX_SEATS} at most.")
    if any(not isinstance(i, int) or not 0 <= i < sum(rows) for i in hosts):
        raise ServiceError("bad_layout", "Host seat indexes must be seats of the layout.")
    room = Room(app=app, room_id=room_id, title=title, created_by=created_by)
    room.seat_rows, room.host_indexes = rows, hosts
    room.full_clean(exclude=["app"])
    with transaction.atomic():
        if Room.objects.filter(app=app, room_id=room_id).exists():
            raise ServiceError("room_exists", f"A room '{room_id}' already exists.")
        room.save()
        Seat.objects.bulk_create(Seat(room=room, index=i) for i in range(room.seat_count))
    return room


def room_end(*, room: Room, reason: str = "roomEnded") -> None:
    """End the room for everyone: they are told, then disconnected; seats are cleared."""
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room.pk)
        if room.ended_at is not None:
            return
        room.ended_at = timezone.now()
        room.save(update_fields=["ended_at"])
        Seat.objects.filter(room=room).update(occupant=None)
        room.members.update(online=False, channel_name="", left_at=timezone.now())
        events.on_commit_room_ended(room, reason=reason)


# --- members --------------------------------------------------------------------------------


def member_join(*, room: Room, claims: TokenClaims, channel_name: str) -> JoinResult:
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room.pk)
        if not room.is_live:
            raise ServiceError("room_ended", "This room has ended.")
        member, _ = Member.objects.get_or_create(
            room=room, user_id=claims.user_id, defaults={"user_name": claims.user_name}
        )
        if member.banned:
            raise ServiceError("banned", "You are banned from this room.")
        replaced = member.channel_name if member.online and member.channel_name else None
        member.user_name = claims.user_name
        member.role = _joining_role(member=member, ceiling=claims.role)
        member.online, member.left_at, member.channel_name = True, None, channel_name
        member.save()
        _release_stale_seats(room)
        events.on_commit_room_changed(room, [{"type": "onUserJoined", "userID": member.user_id}])
    return JoinResult(member=member, replaced_channel=replaced)


def _joining_role(*, member: Member, ceiling: str | None) -> str:
    if ceiling == Role.HOST:
        return Role.HOST
    # A co-host keeps the role the host gave them across a reload.
    if member.role == Role.COHOST and ceiling in (Role.COHOST, Role.SPEAKER, None):
        return Role.COHOST
    return Role.AUDIENCE


def member_disconnect(*, member: Member, channel_name: str) -> None:
    """The socket went away. Seats are kept for the grace period (a reload keeps them)."""
    with transaction.atomic():
        updated = Member.objects.filter(pk=member.pk, channel_name=channel_name).update(
            online=False, channel_name="", left_at=timezone.now()
        )
        if updated:
            events.on_commit_room_changed(
                member.room, [{"type": "onUserLeft", "userID": member.user_id}]
            )


def seats_release_stale(*, room: Room) -> list[int]:
    """Free the seats of users offline longer than the grace period."""
    with transaction.atomic():
        return _release_stale_seats(room)


def _release_stale_seats(room: Room) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_GRACE_SECONDS)
    stale = list(
        Seat.objects.filter(
            room=room, occupant__online=False, occupant__left_at__lte=cutoff
        ).select_related("occupant")
    )
    if not stale:
        return []
    Seat.objects.filter(pk__in=[s.pk for s in stale]).update(occupant=None)
    freed = [s.index for s in stale]
    events.on_commit_room_changed(
        room,
        [{"type": "seat.onChanged", "taken": {}, "untaken": _seat_map(stale)}],
    )
    return freed


def member_kick(*, member: Member, by: Member | None = None) -> None:
    """Remove a user from the room now; they may come back with a token unless banned."""
    _require_moderator(by)
    with transaction.atomic():
        channel = _remove_member(member)
        events.on_commit_member_removed(member, channel, reason="kickOut")


def member_ban(*, member: Member, by: Member | None = None) -> None:
    """Remove a user and refuse every later join of that user_id to this room."""
    _require_moderator(by)
    with transaction.atomic():
        Member.objects.filter(pk=member.pk).update(banned=True)
        channel = _remove_member(member)
        events.on_commit_member_removed(member, channel, reason="kickOut")


def member_unban(*, member: Member) -> None:
    Member.objects.filter(pk=member.pk).update(banned=False)


def _remove_member(member: Member) -> str:
    fresh = Member.objects.select_for_update().get(pk=member.pk)
    Seat.objects.filter(occupant=fresh).update(occupant=None)
    Member.objects.filter(pk=member.pk).update(
        online=False, channel_name="", left_at=timezone.now(), mic_on=False
    )
    events.on_commit_room_changed(member.room, [{"type": "onUserLeft", "userID": member.user_id}])
    return fresh.channel_name


def _require_moderator(by: Member | None) -> None:
    """``by=None`` is an operator (admin); a member needs host permissions."""
    if by is not None and not _member_has_host_permissions(by):
        raise NotPermitted("Only the host can do that.")


def _member_has_host_permissions(member: Member) -> bool:
    state = room_state(member.room)
    return has_host_permissions(state.member(member.user_id), state.members)


# --- seats ----------------------------------------------------------------------------------


def seat_take(*, member: Member, index: int) -> Seat:
    """Sit on an empty, unlocked seat; a seated member switches to it."""
    room = member.room
    if not 0 <= index < room.seat_count:
        raise ServiceError("seat_out_of_range", f"There is no seat {index} in this room.")
    with transaction.atomic():
        member = _active_member(member)
        if index in room.host_indexes and member.role != Role.HOST:
            raise ServiceError("host_seat", f"Seat {index} is for the host.")
        seat = Seat.objects.select_for_update().get(room=room, index=index)
        if seat.occupant_id == member.pk:
            return seat
        if seat.locked:
            raise ServiceError("seat_locked", f"Seat {index} is locked.")
        if seat.occupant_id is not None:
            raise ServiceError("seat_taken", f"Seat {index} is taken.")
        previous = list(Seat.objects.filter(occupant=member))
        Seat.objects.filter(occupant=member).update(occupant=None)
        try:
            with transaction.atomic():
                taken = Seat.objects.filter(pk=seat.pk, occupant__isnull=True, locked=False).update(
                    occupant=member
                )
        except IntegrityError:
            taken = 0
        if not taken:
            raise ServiceError("seat_taken", f"Seat {index} is taken.")
        seat.occupant = member
        events.on_commit_room_changed(
            room,
            [
                {
                    "type": "seat.onChanged",
                    "taken": {str(index): member.user_id},
                    "untaken": _seat_map(previous),
                }
            ],
        )
    return seat


def seat_leave(*, member: Member) -> None:
    with transaction.atomic():
        member = _active_member(member)
        seats = list(Seat.objects.select_for_update().filter(occupant=member))
        if not seats:
            raise ServiceError("not_seated", "You are not on a seat.")
        Seat.objects.filter(occupant=member).update(occupant=None)
        events.on_commit_room_changed(
            member.room, [{"type": "seat.onChanged", "taken": {}, "untaken": _seat_map(seats)}]
        )


def seat_set_locked(*, room: Room, actor: Member | None, index: int, locked: bool) -> list[int]:
    """Lock (``close``) or unlock (``open``) one seat, or all with ``index=-1``.

    An occupied seat keeps its occupant; the lock applies to the next taker. ``actor=None``
    is an operator acting from admin.
    """
    if actor is not None:
        actor = _active_member(actor)
        if actor.room_id != room.pk:
            raise NotPermitted("You are not in this room.")
        _require_moderator(actor)
    return _set_locked(room=room, index=index, locked=locked)


def _set_locked(*, room: Room, index: int, locked: bool) -> list[int]:
    if index != -1 and not 0 <= index < room.seat_count:
        raise ServiceError("seat_out_of_range", f"There is no seat {index} in this room.")
    with transaction.atomic():
        seats = Seat.objects.select_for_update().filter(room=room, locked=not locked)
        if index != -1:
            seats = seats.filter(index=index)
        changed = list(seats.values_list("index", flat=True))
        Seat.objects.filter(room=room, index__in=changed).update(locked=locked)
        if changed:
            kind = "seat.onClosed" if locked else "seat.onOpened"
            events.on_commit_room_changed(room, [{"type": kind, "indexes": changed}])
    return changed


def seat_clear(*, seat: Seat) -> None:
    """An operator frees a seat (its user stays in the room)."""
    with transaction.atomic():
        seat = Seat.objects.select_for_update().select_related("occupant").get(pk=seat.pk)
        if seat.occupant is None:
            return
        untaken = _seat_map([seat])
        Seat.objects.filter(pk=seat.pk).update(occupant=None)
        events.on_commit_room_changed(
            seat.room, [{"type": "seat.onChanged", "taken": {}, "untaken": untaken}]
        )


def _seat_map(seats: list[Seat]) -> dict[str, str]:
    return {str(s.index): s.occupant.user_id for s in seats if s.occupant is not None}


# --- microphone and chat ----------------------------------------------------------------------


def microphone_turn_on(*, member: Member, is_on: bool) -> None:
    """The local user turns their own microphone on or off."""
    with transaction.atomic():
        member = _active_member(member)
        Member.objects.filter(pk=member.pk).update(mic_on=is_on)
        events.on_commit_room_changed(
            member.room,
            [
                {
                    "type": "audioVideo.microphone.onStateChanged",
                    "userID": member.user_id,
                    "isOn": is_on,
                }
            ],
        )


def seat_host_mute(*, room: Room, actor: Member, index: int, muted: bool) -> str:
    """The host turns off the microphone of the user on a seat; returns their user ID.

    Turning it back on is the user's own choice (the seed's "turn on by others" asks them
    first), so ``muted=False`` is refused here.
    """
    if not muted:
        raise ServiceError("needs_consent", "Only the user can turn their own microphone back on.")
    if not 0 <= index < room.seat_count:
        raise ServiceError("seat_out_of_range", f"There is no seat {index} in this room.")
    with transaction.atomic():
        actor = _active_member(actor)
        if actor.room_id != room.pk:
            raise NotPermitted("You are not in this room.")
        _require_moderator(actor)
        seat = Seat.objects.select_related("occupant").get(room=room, index=index)
        if seat.occupant is None:
            raise ServiceError("seat_empty", f"Nobody is on seat {index}.")
        Member.objects.filter(pk=seat.occupant.pk).update(mic_on=False)
        events.on_commit_room_changed(
            room,
            [
                {
                    "type": "audioVideo.microphone.onStateChanged",
                    "userID": seat.occupant.user_id,
                    "isOn": False,
                    "byHost": True,
                }
            ],
        )
        return seat.occupant.user_id


def seat_user_id(*, room: Room, index: int) -> str | None:
    """Who sits on a seat now (for choices that are the caller's own, like local mutes)."""
    if not 0 <= index < room.seat_count:
        raise ServiceError("seat_out_of_range", f"There is no seat {index} in this room.")
    seat = Seat.objects.select_related("occupant").get(room=room, index=index)
    return seat.occupant.user_id if seat.occupant else None


def message_send(*, member: Member, text: str, attributes: dict | None = None) -> Message:
    text = text.strip()
    limit = settings.LIVEAUDIO_MESSAGE_MAX_CHARS
    if not text:
        raise ServiceError("message_empty", "A message cannot be empty.")
    if len(text) > limit:
        raise ServiceError("message_too_long", f"A message is at most {limit} characters.")
    with transaction.atomic():
        member = _active_member(member)
        message = Message.objects.create(
            room=member.room, sender=member, text=text, attributes=attributes or {}
        )
        events.on_commit_message_sent(message)
    return message


def message_send_system(*, room: Room, text: str) -> Message:
    with transaction.atomic():
        message = Message.objects.create(room=room, sender=None, text=text)
        events.on_commit_message_sent(message)
    return message


def message_delete(*, message: Message) -> None:
    """Hide a message from everyone's view; the row stays for the record."""
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, deleted=False).update(deleted=True)
        if updated:
            events.on_commit_message_deleted(message)


def _active_member(member: Member) -> Member:
    """Reload the member and refuse anyone who is no longer in a live room."""
    fresh = Member.objects.select_related("room", "room__app").get(pk=member.pk)
    if fresh.banned:
        raise NotPermitted("You are banned from this room.")
    if not fresh.room.is_live:
        raise ServiceError("room_ended", "This room has ended.")
    if not fresh.online:
        raise NotPermitted("You are not in this room.")
    return fresh
