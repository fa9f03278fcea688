"""Raised hands and invitations: the two ways onto a locked seat.

Both live in the database (``SeatRequest``, ``SeatInvitation``), so the host's queue is the
server's, not a peer's, and both expire after ``LIVEAUDIO_SEAT_TICKET_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from rooms import events
from rooms.models import Member, Role, Room, Seat, SeatInvitation, SeatRequest
from rooms.services.common import (
    ServiceError,
    active_member,
    check_index,
    first_empty_seat,
    host_acting,
    lock_room,
    member_by_user_id,
    room_changed,
    seat_of,
    to_hosts,
    to_users,
)
from rooms.services.seats import seat_member


def _ticket_cutoff():
    return timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_TICKET_SECONDS)


def _someone_can_answer(room: Room) -> bool:
    """An online host, or an online co-host (who has the permissions while no host is in)."""
    return Member.objects.filter(
        room=room, online=True, banned=False, role__in=[Role.HOST, Role.COHOST]
    ).exists()


# --- requests (raised hands) ----------------------------------------------------------------


def seat_request_apply(*, member: Member, index: int | None = None) -> SeatRequest:
    """``seat.audience.applyToTake``: join the host's queue."""
    if not _someone_can_answer(member.room):
        # Outside any transaction: the failure event goes out now; nothing was written.
        # Nothing was written: a notice to the asker alone, no room update.
        events.notify_users(
            member.room,
            [member.user_id],
            {"type": "seat.audience.onTakingRequestFailed", "reason": "noHost"},
        )
        raise ServiceError("no_host", "There is no host in the room to accept a request.")
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        tickets_expire(room=room)
        if index is not None:
            check_index(room, index)
        if seat_of(member) is not None:
            raise ServiceError("already_seated", "You are already on a seat.")
        if SeatRequest.objects.filter(member=member).exists():
            raise ServiceError("already_requested", "You have already asked for a seat.")
        request = SeatRequest.objects.create(room=room, member=member, index=index)
        room_changed(
            room,
            [
                to_hosts(
                    {
                        "type": "seat.host.onTakingRequested",
                        "user": {"id": member.user_id, "name": member.user_name},
                        "requestedAt": int(request.created_at.timestamp() * 1000),
                    }
                )
            ],
        )
        return request


def seat_request_cancel(*, member: Member) -> None:
    """``seat.audience.cancelTakingRequest``."""
    _withdraw(
        member,
        lambda m: SeatRequest.objects.filter(member=m),
        missing=ServiceError("no_request", "You have no pending request."),
        hosts_hear={"type": "seat.host.onTakingRequestCanceled", "reason": "canceled"},
    )


def _withdraw(
    member: Member,
    tickets_of: Callable[[Member], QuerySet],
    *,
    missing: ServiceError,
    hosts_hear: dict,
) -> None:
    """A member takes back their own request, or declines their invitation."""
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        if not tickets_of(member).delete()[0]:
            raise missing
        room_changed(room, [to_hosts({**hosts_hear, "userID": member.user_id})])


def seat_request_accept(*, actor: Member, user_id: str) -> Seat:
    """``seat.host.acceptTakingRequest``: seat the requester, locked seat or not, mic on."""
    with transaction.atomic():
        room, actor = host_acting(actor)
        tickets_expire(room=room)
        request = _pending_request(room, user_id)
        seat = _seat_for_request(room, request)
        request.delete()
        return seat_member(room=room, member=request.member, seat=seat, mic_on=True)


def seat_request_reject(*, actor: Member, user_id: str) -> None:
    """``seat.host.rejectTakingRequest``."""
    with transaction.atomic():
        room, actor = host_acting(actor)
        _pending_request(room, user_id).delete()
        room_changed(
            room,
            [
                to_users({"type": "seat.audience.onTakingRequestRejected"}, user_id),
                to_hosts(
                    {
                        "type": "seat.host.onTakingRequestCanceled",
                        "userID": user_id,
                        "reason": "rejected",
                    }
                ),
            ],
        )


def _pending_request(room: Room, user_id: str) -> SeatRequest:
    request = (
        SeatRequest.objects.filter(room=room, member__user_id=user_id)
        .select_related("member")
        .first()
    )
    if request is None:
        raise ServiceError("no_request", f"{user_id!r} has no pending request.")
    return request


def _seat_for_request(room: Room, request: SeatRequest) -> Seat:
    """The seat asked for if it is still free (and not a host seat), else the first free."""
    if request.index is not None and request.index not in room.host_indexes:
        asked = Seat.objects.filter(room=room, index=request.index, occupant__isnull=True).first()
        if asked is not None:
            return asked
    seat = first_empty_seat(room, include_locked=True)
    if seat is None:
        raise ServiceError("no_empty_seat", "There is no empty seat.")
    return seat


# --- invitations ----------------------------------------------------------------------------


def seat_invite(*, actor: Member, user_id: str) -> SeatInvitation:
    """``seat.host.inviteToTake``: one pending invitation per user; it replaces their request."""
    with transaction.atomic():
        room, actor = host_acting(actor)
        tickets_expire(room=room)
        invitee = member_by_user_id(room, user_id)
        if seat_of(invitee) is not None:
            raise ServiceError("already_seated", f"{invitee.user_name} is already on a seat.")
        if SeatInvitation.objects.filter(invitee=invitee).exists():
            raise ServiceError("already_invited", f"{invitee.user_name} is already invited.")
        room_events = _drop_request(invitee, reason="invited")
        invitation = SeatInvitation.objects.create(room=room, invitee=invitee, inviter=actor)
        room_events.append(
            to_users(
                {
                    "type": "seat.audience.onTakingInvitationReceived",
                    "inviter": {"id": actor.user_id, "name": actor.user_name},
                },
                invitee.user_id,
            )
        )
        room_changed(room, room_events)
        return invitation


def seat_invitation_accept(*, member: Member) -> Seat:
    """``seat.audience.acceptTakingInvitation``: the first empty seat, locked or not, mic on."""
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        tickets_expire(room=room)
        invitation = SeatInvitation.objects.filter(invitee=member).first()
        if invitation is None:
            raise ServiceError("no_invitation", "You have no pending invitation.")
        invitation.delete()
        seat = first_empty_seat(room, include_locked=True)
        if seat is None:
            room_changed(
                room,
                [
                    to_hosts(
                        {
                            "type": "seat.host.onTakingInvitationFailed",
                            "userID": member.user_id,
                            "reason": "noEmptySeat",
                        }
                    )
                ],
            )
            raise ServiceError("no_empty_seat", "There is no empty seat.")
        return seat_member(room=room, member=member, seat=seat, mic_on=True)


def seat_invitation_reject(*, member: Member) -> None:
    """The invitee declines; the host is told (``onTakingInvitationRejected``)."""
    _withdraw(
        member,
        lambda m: SeatInvitation.objects.filter(invitee=m),
        missing=ServiceError("no_invitation", "You have no pending invitation."),
        hosts_hear={"type": "seat.host.onTakingInvitationRejected"},
    )


# --- expiry and departures -------------------------------------------------------------------


def tickets_expire(*, room: Room) -> int:
    """Drop requests and invitations older than the timeout, telling those concerned."""
    cutoff = _ticket_cutoff()
    stale_requests = list(
        SeatRequest.objects.filter(room=room, created_at__lte=cutoff).select_related("member")
    )
    stale_invitations = list(
        SeatInvitation.objects.filter(room=room, created_at__lte=cutoff).select_related("invitee")
    )
    if not stale_requests and not stale_invitations:
        return 0
    SeatRequest.objects.filter(pk__in=[r.pk for r in stale_requests]).delete()
    SeatInvitation.objects.filter(pk__in=[i.pk for i in stale_invitations]).delete()
    room_events = [
        event
        for request in stale_requests
        for event in (
            to_hosts(
                {
                    "type": "seat.host.onTakingRequestCanceled",
                    "userID": request.member.user_id,
                    "reason": "timeout",
                }
            ),
            to_users(
                {"type": "seat.audience.onTakingRequestFailed", "reason": "timeout"},
                request.member.user_id,
            ),
        )
    ] + [
        to_hosts(
            {
                "type": "seat.host.onTakingInvitationFailed",
                "userID": invitation.invitee.user_id,
                "reason": "timeout",
            }
        )
        for invitation in stale_invitations
    ]
    room_changed(room, room_events)
    return len(stale_requests) + len(stale_invitations)


def seat_tickets_expire(*, room: Room) -> int:
    with transaction.atomic():
        return tickets_expire(room=lock_room(room))


def tickets_drop_for(member: Member, *, reason: str) -> list[dict]:
    """A member left: their request and invitation go, and the hosts are told."""
    dropped = _drop_request(member, reason=reason)
    if SeatInvitation.objects.filter(invitee=member).delete()[0]:
        dropped.append(
            to_hosts(
                {
                    "type": "seat.host.onTakingInvitationFailed",
                    "userID": member.user_id,
                    "reason": reason,
                }
            )
        )
    return dropped


def _drop_request(member: Member, *, reason: str) -> list[dict]:
    """Delete a member's pending request; the hosts' queue hears why."""
    if not SeatRequest.objects.filter(member=member).delete()[0]:
        return []
    return [
        to_hosts(
            {
                "type": "seat.host.onTakingRequestCanceled",
                "userID": member.user_id,
                "reason": reason,
            }
        )
    ]
