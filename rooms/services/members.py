"""Joining, leaving, roles and moderation of members."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms import events, webhooks
from rooms.models import Member, Role, Room, Seat
from rooms.roles import ROLE_RANK
from rooms.services.common import (
    NotPermitted,
    ServiceError,
    active_member,
    first_empty_seat,
    lock_room,
    member_by_user_id,
    require_host_permissions,
    room_changed,
    seat_of,
)
from rooms.services.mediafiles import room_media_end
from rooms.services.properties import properties_drop_of_away, properties_drop_of_owners
from rooms.services.requests import tickets_drop_for
from rooms.services.seats import seat_member, set_locked, vacate
from rooms.tokens import TokenClaims


@dataclass(frozen=True)
class JoinOptions:
    """The joiner's config (``ZegoUIKitPrebuiltLiveAudioRoomConfig``) that the server applies."""

    role: str = Role.AUDIENCE  # host, speaker or audience; capped by the token's role
    take_index: int | None = None  # takeIndexWhenJoining
    close_when_joining: bool = False  # closeWhenJoining (hosts only)
    mic_on_when_joining: bool = False  # turnOnMicrophoneWhenJoining
    end_when_host_leaves: bool = False  # a host's config: leaving ends the room
    # A host's config.mediaPlayer.rolesCanControl and config.roomProperties.rolesCanWrite,
    # stored on the room as they join; None (a config that does not name them, the token
    # page): the room keeps the roles an earlier host's config set.
    media_roles: tuple[str, ...] | None = None
    property_roles: tuple[str, ...] | None = None
    # config.backgroundMedia (path, enableRepeat), started once the host is in.
    background_media: tuple[str, bool] | None = None


@dataclass(frozen=True)
class JoinResult:
    member: Member
    replaced_channel: str | None  # the socket of the same user's older tab, if any
    notices: list[dict] = field(default_factory=list)  # error events for the joiner alone


def member_join(
    *, room: Room, claims: TokenClaims, channel_name: str, options: JoinOptions | None = None
) -> JoinResult:
    options = options or JoinOptions()
    notices: list[dict] = []
    with transaction.atomic():
        room = lock_room(room)
        member, _ = Member.objects.get_or_create(
            room=room, user_id=claims.user_id, defaults={"user_name": claims.user_name}
        )
        if member.banned:
            raise ServiceError("banned", "You are banned from this room.")
        replaced = member.channel_name if member.online and member.channel_name else None
        role = _joining_role(member, options.role, claims.role, notices)
        member.user_name, member.online, member.left_at = claims.user_name, True, None
        member.channel_name = channel_name
        role = _save_with_role(member, role, notices)
        release_stale_seats(room)
        if role == Role.HOST:
            _apply_host_config(room, options)
        _take_seat_when_joining(room, member, role, options, notices)
        room_changed(room, [{"type": "onUserJoined", "userID": member.user_id}])
    return JoinResult(member=member, replaced_channel=replaced, notices=notices)


def _joining_role(member: Member, wanted: str, ceiling: str | None, notices: list) -> str:
    """The role asked for, never above the token's ceiling (speaker when it names none)."""
    if member.role == Role.COHOST and wanted != Role.HOST:
        return Role.COHOST  # a reload keeps the role the host gave
    cap = ceiling or Role.SPEAKER
    if ROLE_RANK[Role(wanted)] > ROLE_RANK[Role(cap)]:
        notices.append(
            {
                "code": "role_not_permitted",
                "message": f"Your token does not allow the {wanted} role.",
            }
        )
        return Role.SPEAKER if cap == Role.COHOST else cap
    return wanted


def _save_with_role(member: Member, role: str, notices: list) -> str:
    """Store the role ("speaker" is not stored: anyone on a seat is one). The database
    admits one online host per room: a second host, even at the same instant, joins as
    audience."""
    member.role = role if role in (Role.HOST, Role.COHOST) else Role.AUDIENCE
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError:
        notices.append({"code": "host_exists", "message": "The room already has a host."})
        member.role = role = Role.AUDIENCE
        member.save()
    return role


def _apply_host_config(room: Room, options: JoinOptions) -> None:
    if options.end_when_host_leaves != room.end_when_host_leaves:
        Room.objects.filter(pk=room.pk).update(end_when_host_leaves=options.end_when_host_leaves)
    if options.media_roles is not None and list(options.media_roles) != room.media_roles:
        Room.objects.filter(pk=room.pk).update(media_roles=list(options.media_roles))
    if options.property_roles is not None and list(options.property_roles) != room.property_roles:
        Room.objects.filter(pk=room.pk).update(property_roles=list(options.property_roles))
    if options.close_when_joining and not room.lock_state_set:
        set_locked(room=room, index=-1, locked=True)


def _take_seat_when_joining(
    room: Room, member: Member, role: str, options: JoinOptions, notices: list
) -> None:
    """Hosts take a host seat, speakers a free one; a bad index never evicts anyone."""
    if seat_of(member) is not None:  # back within the grace period: same seat
        if options.mic_on_when_joining:
            Member.objects.filter(pk=member.pk).update(mic_on=True)
        return
    if role not in (Role.HOST, Role.SPEAKER):
        return
    seat = _joining_seat(room, role, options.take_index)
    if seat is None or seat.occupant_id is not None:
        notices.append(
            {
                "code": "seat_unavailable",
                "message": "Your seat is not available; you joined the audience.",
            }
        )
        return
    seat_member(room=room, member=member, seat=seat, mic_on=options.mic_on_when_joining)


def _joining_seat(room: Room, role: str, index: int | None) -> Seat | None:
    if role == Role.HOST:
        if index is None and room.host_indexes:
            index = room.host_indexes[0]
        if index is None or index not in room.host_indexes:
            return None
        return Seat.objects.filter(room=room, index=index).first()
    if index is None:
        return first_empty_seat(room, include_locked=False)
    seat = Seat.objects.filter(room=room, index=index).first()
    if seat is None or seat.locked or index in room.host_indexes:
        return None
    return seat


def member_leave(*, member: Member) -> None:
    """``leave()``: out of the room now, seat and requests too; a host may end the room."""
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        _take_offline(member, reason="left")
        if member.role == Role.HOST and room.end_when_host_leaves:
            _end(room, reason="roomEnded")


def member_disconnect(*, member: Member, channel_name: str) -> None:
    """The socket went away. The seat stays for the grace period (a reload keeps it)."""
    with transaction.atomic():
        # The room's row lock first, as every other writer of the room takes it (an ended
        # room included: its members still go offline).
        list(Room.objects.select_for_update().filter(pk=member.room_id).values_list("pk"))
        updated = Member.objects.filter(pk=member.pk, channel_name=channel_name).update(
            online=False, channel_name="", left_at=timezone.now()
        )
        if updated:
            room_events = [{"type": "onUserLeft", "userID": member.user_id}]
            room_events += tickets_drop_for(member, reason="left")
            room_changed(member.room, room_events)


def seats_release_stale(*, room: Room) -> list[int]:
    """Free the seats of users offline longer than the grace period. A room whose host asked
    for it (``endRoomWhenHostLeaves``) ends once the host has been away that long, as it
    does when the host leaves on purpose."""
    with transaction.atomic():
        room = lock_room(room)
        if room.end_when_host_leaves and _host_away_past_grace(room):
            _end(room, reason="roomEnded")
            return []
        return release_stale_seats(room)


def _host_away_past_grace(room: Room) -> bool:
    cutoff = timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_GRACE_SECONDS)
    hosts = Member.objects.filter(room=room, role=Role.HOST)
    return not hosts.filter(online=True).exists() and hosts.filter(left_at__lte=cutoff).exists()


def release_stale_seats(room: Room) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_GRACE_SECONDS)
    stale = list(
        Seat.objects.filter(
            room=room, occupant__online=False, occupant__left_at__lte=cutoff
        ).select_related("occupant")
    )
    for seat in stale:
        assert seat.occupant is not None  # the filter above
        vacate(seat.occupant)
    # isDeleteAfterOwnerLeft keys of owners who vanished go when their seat would.
    dropped = properties_drop_of_away(room, left_before=cutoff)
    if dropped:
        room_changed(room, dropped)
    return [seat.index for seat in stale]


def member_kick(*, member: Member, by: Member | None = None) -> None:
    """Remove a user from the room now; they may come back with a token unless banned."""
    _remove(member, by=by, ban=False)


def member_ban(*, member: Member, by: Member | None = None) -> None:
    """Remove a user and refuse every later join of that user_id to this room."""
    _remove(member, by=by, ban=True)


def member_kick_by_user_id(*, actor: Member, user_id: str, ban: bool = False) -> None:
    target = member_by_user_id(actor.room, user_id)
    _remove(target, by=actor, ban=ban)


def member_unban(*, member: Member) -> None:
    Member.objects.filter(pk=member.pk).update(banned=False)


def _remove(member: Member, *, by: Member | None, ban: bool) -> None:
    with transaction.atomic():
        lock_room(member.room)
        if by is not None:
            by = active_member(by)
            require_host_permissions(by)
            if by.room_id != member.room_id:
                raise NotPermitted("You are not in this room.")
        member = Member.objects.select_related("room").get(pk=member.pk)
        if by is not None and (member.role == Role.HOST or member.pk == by.pk):
            raise NotPermitted("Neither the host nor yourself can be removed this way.")
        channel = member.channel_name
        if ban:
            Member.objects.filter(pk=member.pk).update(banned=True)
        _take_offline(member, reason="kickOut")
        events.tell_member_removed(channel, reason="kickOut", banned=ban)


def _take_offline(member: Member, *, reason: str) -> None:
    vacate(member)
    Member.objects.filter(pk=member.pk).update(
        online=False, channel_name="", left_at=timezone.now(), mic_on=False
    )
    # Someone already away (disconnected, in their grace period) was reported leaving then.
    room_events = [{"type": "onUserLeft", "userID": member.user_id}] if member.online else []
    room_events += tickets_drop_for(member, reason=reason)
    room_events += properties_drop_of_owners(member.room, [member.user_id])
    room_changed(member.room, room_events)


def cohost_set(*, actor: Member, user_id: str, is_cohost: bool) -> None:
    """Only the host names the one co-host, and only a seated speaker; naming another
    replaces the first."""
    with transaction.atomic():
        room = lock_room(actor.room)
        actor = active_member(actor)
        if actor.role != Role.HOST:
            raise NotPermitted("Only the host can name a co-host.")
        target = member_by_user_id(room, user_id)
        room_events: list[dict] = []
        if is_cohost:
            if target.role == Role.HOST or seat_of(target) is None:
                raise ServiceError("not_a_speaker", "Only a speaker on a seat can be co-host.")
            for previous in Member.objects.filter(room=room, role=Role.COHOST).exclude(
                pk=target.pk
            ):
                Member.objects.filter(pk=previous.pk).update(role=Role.AUDIENCE)
                room_events.append(
                    {"type": "onUserRoleChanged", "userID": previous.user_id, "role": Role.SPEAKER}
                )
            new_role = Role.COHOST
        else:
            if target.role != Role.COHOST:
                raise ServiceError("not_cohost", f"{target.user_name} is not the co-host.")
            new_role = Role.AUDIENCE
        Member.objects.filter(pk=target.pk).update(role=new_role)
        shown = Role.COHOST if is_cohost else Role.SPEAKER
        room_events.append({"type": "onUserRoleChanged", "userID": target.user_id, "role": shown})
        room_changed(room, room_events)


# --- rooms ----------------------------------------------------------------------------------


def room_end(*, room: Room, by: Member | None = None, reason: str = "roomEnded") -> None:
    """End the room for everyone: they are told, then disconnected; seats are cleared.

    ``by=None`` is an operator (admin); a member needs host permissions.
    """
    with transaction.atomic():
        try:
            room = lock_room(room)
        except ServiceError:
            return  # already ended
        if by is not None:
            by = active_member(by)
            require_host_permissions(by)
        _end(room, reason=reason)


def _end(room: Room, *, reason: str) -> None:
    Room.objects.filter(pk=room.pk).update(ended_at=timezone.now())
    Seat.objects.filter(room=room).update(occupant=None)
    room.seat_requests.all().delete()
    room.seat_invitations.all().delete()
    room.members.update(online=False, channel_name="", left_at=timezone.now())
    room_media_end(room)
    webhooks.enqueue_room_ended(room=room, reason=reason)
    events.broadcast_room_ended(room, reason=reason)
