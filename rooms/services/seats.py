"""Seats and microphones: take, switch, leave, lock, mute, remove."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from rooms import events
from rooms.models import Member, Role, Room, Seat, SeatRequest
from rooms.services.common import (
    NotPermitted,
    ServiceError,
    active_member,
    check_index,
    host_acting,
    lock_room,
    member_by_user_id,
    require_host_permissions,
    require_same_room,
    room_changed,
    seat_map,
    to_hosts,
    to_users,
)


def seat_take(*, member: Member, index: int) -> Seat:
    """Sit on an empty, unlocked seat; a seated member switches to it."""
    check_index(member.room, index)
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        seat = Seat.objects.get(room=room, index=index)
        if seat.occupant_id == member.pk:
            return seat
        if index in room.host_indexes and member.role != Role.HOST:
            raise ServiceError("host_seat", f"Seat {index} is for the host.")
        if seat.locked:
            raise ServiceError("seat_locked", f"Seat {index} is locked.")
        return seat_member(room=room, member=member, seat=seat)


def seat_member(*, room: Room, member: Member, seat: Seat, mic_on: bool | None = None) -> Seat:
    """Put a member on a seat (leaving their old one), whatever the lock: callers decide.

    Inside the caller's transaction, with the room locked.
    """
    if seat.occupant_id is not None and seat.occupant_id != member.pk:
        raise ServiceError("seat_taken", f"Seat {seat.index} is taken.")
    previous = list(Seat.objects.filter(occupant=member).select_related("occupant"))
    Seat.objects.filter(occupant=member).update(occupant=None)
    try:
        with transaction.atomic():
            taken = Seat.objects.filter(pk=seat.pk, occupant__isnull=True).update(occupant=member)
    except IntegrityError:
        taken = 0
    if not taken:
        raise ServiceError("seat_taken", f"Seat {seat.index} is taken.")
    if mic_on is not None:
        Member.objects.filter(pk=member.pk).update(mic_on=mic_on)
    # A seated user's own pending request is moot now.
    SeatRequest.objects.filter(member=member).delete()
    seat.occupant = member
    room_changed(
        room,
        [
            {
                "type": "seat.onChanged",
                "taken": {str(seat.index): member.user_id},
                "untaken": seat_map(previous),
            }
        ],
    )
    return seat


def vacate(member: Member, *, by: Member | None = None) -> dict[str, str]:
    """Take a member off their seat; a co-host off a seat is no co-host. Returns untaken.
    ``by``: the host who did it, whom the member is told of."""
    seats = list(Seat.objects.filter(occupant=member).select_related("occupant"))
    if not seats:
        return {}
    Seat.objects.filter(occupant=member).update(occupant=None)
    changes: dict[str, object] = {"mic_on": False}
    if member.role == Role.COHOST:
        changes["role"] = Role.AUDIENCE
    Member.objects.filter(pk=member.pk).update(**changes)
    room_events: list[dict] = [{"type": "seat.onChanged", "taken": {}, "untaken": seat_map(seats)}]
    if member.role == Role.COHOST:
        room_events.append(
            {"type": "onUserRoleChanged", "userID": member.user_id, "role": Role.AUDIENCE}
        )
    if by is not None:
        by_user = {"id": by.user_id, "name": by.user_name}
        room_events.append(
            to_users({"type": "seat.speaker.onRemovedByHost", "by": by_user}, member.user_id)
        )
    room_changed(member.room, room_events)
    return seat_map(seats)


def seat_leave(*, member: Member) -> None:
    """``seat.speaker.leave``: back to the audience."""
    with transaction.atomic():
        lock_room(member.room)
        member = active_member(member)
        if not vacate(member):
            raise ServiceError("not_seated", "You are not on a seat.")


def seat_remove_speaker(*, actor: Member, user_id: str) -> None:
    """``seat.host.removeSpeaker``: the host takes someone off their seat."""
    with transaction.atomic():
        room, actor = host_acting(actor)
        target = member_by_user_id(room, user_id)
        if target.role == Role.HOST:
            raise NotPermitted("The host cannot be removed from their seat.")
        if not vacate(target, by=actor):
            raise ServiceError("not_seated", f"{target.user_name} is not on a seat.")


def seat_set_locked(*, room: Room, actor: Member | None, index: int, locked: bool) -> list[int]:
    """Lock (``close``) or unlock (``open``) one seat, or all with ``index=-1``.

    An occupied seat keeps its occupant; the lock applies to the next taker. A lock change
    clears pending requests to take a seat (their premise changed). ``actor=None`` is an
    operator acting from admin.
    """
    if index != -1:
        check_index(room, index)
    with transaction.atomic():
        room = lock_room(room)
        if actor is not None:
            actor = active_member(actor)
            require_same_room(actor, room)
            require_host_permissions(actor)
        return set_locked(room=room, index=index, locked=locked)


def set_locked(*, room: Room, index: int, locked: bool) -> list[int]:
    seats = Seat.objects.filter(room=room, locked=not locked)
    if index != -1:
        seats = seats.filter(index=index)
    changed = list(seats.values_list("index", flat=True))
    Seat.objects.filter(room=room, index__in=changed).update(locked=locked)
    if not room.lock_state_set:
        Room.objects.filter(pk=room.pk).update(lock_state_set=True)
    if changed:
        kind = "seat.onClosed" if locked else "seat.onOpened"
        room_events = [{"type": kind, "indexes": changed}]
        room_events += _clear_requests(room, reason="lockChanged")
        room_changed(room, room_events)
    return changed


def _clear_requests(room: Room, *, reason: str) -> list[dict]:
    requests = list(SeatRequest.objects.filter(room=room).select_related("member"))
    SeatRequest.objects.filter(pk__in=[r.pk for r in requests]).delete()
    cleared: list[dict] = []
    for request in requests:
        user_id = request.member.user_id
        cleared.append(
            to_hosts(
                {"type": "seat.host.onTakingRequestCanceled", "userID": user_id, "reason": reason}
            )
        )
        cleared.append(
            to_users({"type": "seat.audience.onTakingRequestFailed", "reason": reason}, user_id)
        )
    return cleared


def seat_clear(*, seat: Seat) -> None:
    """An operator frees a seat (its user stays in the room)."""
    with transaction.atomic():
        seat = Seat.objects.select_related("occupant", "room").get(pk=seat.pk)
        lock_room(seat.room)
        if seat.occupant is not None:
            vacate(seat.occupant)


def seat_user_id(*, room: Room, index: int) -> str | None:
    """Who sits on a seat now (for choices that are the caller's own, like local mutes)."""
    check_index(room, index)
    seat = Seat.objects.select_related("occupant").get(room=room, index=index)
    return seat.occupant.user_id if seat.occupant else None


# --- microphones ------------------------------------------------------------------------------


def microphone_turn_on(*, member: Member, is_on: bool, user_id: str | None = None) -> None:
    """Turn one's own microphone on or off; or, with ``user_id``, someone else's.

    Someone else's microphone can be turned off by the host (a host mute, enforced by the
    mixer at once), but turning it on is only a request: the user is asked
    (``audioVideo.onMicrophoneTurnOnByOthersConfirmation``) and decides by turning it on
    themselves.
    """
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        if user_id is None or user_id == member.user_id:
            _set_microphone(member, is_on)
            return
        require_host_permissions(member)
        target = member_by_user_id(room, user_id)
        if not is_on:
            _set_microphone(target, False, by_host=True)
            return
        # Only a question to the user: nothing changes until they turn it on themselves.
        events.notify_users(
            room,
            [target.user_id],
            {
                "type": "audioVideo.onMicrophoneTurnOnByOthersConfirmation",
                "fromUser": {"id": member.user_id, "name": member.user_name},
            },
        )


def microphone_switch(*, member: Member, user_id: str | None = None) -> None:
    """``switchState``: off if it is on, on if it is off (for others: the host asks)."""
    target = member if user_id is None else member_by_user_id(member.room, user_id)
    fresh = Member.objects.get(pk=target.pk)
    microphone_turn_on(member=member, is_on=not fresh.mic_on, user_id=user_id)


def seat_host_mute(*, room: Room, actor: Member, index: int, muted: bool = True) -> str:
    """``seat.host.mute``: mute the user on a seat; unmuting asks them. Returns their ID."""
    with transaction.atomic():
        actor = active_member(actor)
        require_same_room(actor, room)
        require_host_permissions(actor)
        occupant = seat_user_id(room=room, index=index)
        if occupant is None:
            raise ServiceError("seat_empty", f"Nobody is on seat {index}.")
        microphone_turn_on(member=actor, is_on=not muted, user_id=occupant)
    return occupant


def seat_host_mute_all(*, room: Room, actor: Member) -> list[str]:
    """``seat.host.muteAll``: every seated microphone off but the actor's own, in one change
    (one revision, an event for each). Returns whom it muted."""
    with transaction.atomic():
        room = lock_room(room)
        actor = active_member(actor)
        require_same_room(actor, room)
        require_host_permissions(actor)
        muted = list(
            Member.objects.filter(room=room, seats__isnull=False, mic_on=True)
            .exclude(pk=actor.pk)
            .order_by("user_id")
            .values_list("pk", "user_id")
        )
        if not muted:
            return []
        Member.objects.filter(pk__in=[pk for pk, _ in muted]).update(mic_on=False)
        muted_events = [_microphone_event(user_id, False, by_host=True) for _, user_id in muted]
        room_changed(room, muted_events)
    return [user_id for _, user_id in muted]


def _set_microphone(member: Member, is_on: bool, *, by_host: bool = False) -> None:
    Member.objects.filter(pk=member.pk).update(mic_on=is_on)
    room_changed(member.room, [_microphone_event(member.user_id, is_on, by_host=by_host)])


def _microphone_event(user_id: str, is_on: bool, *, by_host: bool) -> dict:
    event = {"type": "audioVideo.microphone.onStateChanged", "userID": user_id, "isOn": is_on}
    if by_host:
        event["byHost"] = True
    return event
