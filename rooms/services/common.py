"""What every service shares: errors, the room lock, permission checks, event addressing."""

from __future__ import annotations

from django.db.models import F, QuerySet

from rooms import events, roles, webhooks
from rooms.errors import ServiceError
from rooms.models import Member, Role, Room, Seat

__all__ = ["ServiceError"]  # defined in rooms.errors (no import cycle with rooms.tokens)


class NotPermitted(ServiceError):
    def __init__(self, message: str = "You are not permitted to do that.") -> None:
        super().__init__("not_permitted", message)


def lock_room(room: Room) -> Room:
    """Take the room's row lock for this transaction: a room's writes happen one at a time.

    PostgreSQL serialises on the row; SQLite's ``BEGIN IMMEDIATE`` already serialises every
    writer. Either way two racing requests (accept vs cancel, invite vs leave) see each
    other's result, never a half-state.
    """
    locked = Room.objects.select_for_update().select_related("app").get(pk=room.pk)
    if not locked.is_live:
        raise ServiceError("room_ended", "This room has ended.")
    return locked


def room_changed(room: Room, room_events: list[dict]) -> None:
    """Record a change of the room, inside its transaction and under its row lock (or with
    nothing else written): count it in the room's ``revision`` (so revisions follow commits),
    write the webhook rows it causes, and broadcast it to the room once it commits."""
    Room.objects.filter(pk=room.pk).update(revision=F("revision") + 1)
    webhooks.enqueue_room_events(room=room, events=room_events)
    events.broadcast_room_changed(room.pk, room_events)


def active_member(member: Member) -> Member:
    """Reload the member and refuse anyone who is no longer in a live room."""
    fresh = Member.objects.select_related("room", "room__app").get(pk=member.pk)
    if fresh.banned:
        raise NotPermitted("You are banned from this room.")
    if not fresh.room.is_live:
        raise ServiceError("room_ended", "This room has ended.")
    if not fresh.online:
        raise NotPermitted("You are not in this room.")
    return fresh


def has_host_permissions(member: Member) -> bool:
    return roles.has_host_permissions(
        member.role,
        host_online=Member.objects.filter(
            room_id=member.room_id, role=Role.HOST, online=True
        ).exists,
    )


def require_host_permissions(member: Member | None) -> None:
    """``None`` is an operator acting from admin; a member needs host permissions."""
    if member is not None and not has_host_permissions(member):
        raise NotPermitted("Only the host can do that.")


def host_acting(actor: Member) -> tuple[Room, Member]:
    """Inside a transaction: lock the actor's room, reload the actor, require host permissions."""
    room = lock_room(actor.room)
    actor = active_member(actor)
    require_host_permissions(actor)
    return room, actor


def require_same_room(member: Member, room: Room) -> None:
    if member.room_id != room.pk:
        raise NotPermitted("You are not in this room.")


def check_index(room: Room, index: int) -> None:
    if not 0 <= index < room.seat_count:
        raise ServiceError("seat_out_of_range", f"There is no seat {index} in this room.")


def member_by_user_id(room: Room, user_id: str) -> Member:
    member = Member.objects.filter(room=room, user_id=user_id, banned=False).first()
    if member is None or not member.online:
        raise ServiceError("user_not_found", f"{user_id!r} is not in this room.")
    return member


def seat_of(member: Member) -> Seat | None:
    return Seat.objects.filter(occupant=member).first()


def seat_map(seats: QuerySet[Seat] | list[Seat]) -> dict[str, str]:
    return {str(s.index): s.occupant.user_id for s in seats if s.occupant is not None}


def first_empty_seat(room: Room, *, include_locked: bool) -> Seat | None:
    """The lowest empty seat that is not a host seat."""
    seats = Seat.objects.filter(room=room, occupant__isnull=True).exclude(
        index__in=room.host_indexes
    )
    if not include_locked:
        seats = seats.filter(locked=False)
    return seats.order_by("index").first()


def to_users(event: dict, *user_ids: str) -> dict:
    """Address an event to some users only; the rest of the room never sees it."""
    return {**event, "to": {"users": list(user_ids)}}


def to_hosts(event: dict, *also: str) -> dict:
    """Address an event to whoever has host permissions (and ``also`` these users)."""
    return {**event, "to": {"hosts": True, "users": list(also)}}
