"""Issue 4's rules at the service layer: joining, requests, invitations, co-host, moderation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms import services
from rooms.models import Member, Room, Seat, SeatInvitation, SeatRequest
from rooms.services import JoinOptions, NotPermitted, ServiceError
from rooms.tokens import TokenClaims
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def join(room: Room, user_id: str, *, ceiling: str | None = None, **options) -> services.JoinResult:
    claims = TokenClaims(
        app_id=room.app.app_id,
        room_id=room.room_id,
        user_id=user_id,
        user_name=user_id.title(),
        role=ceiling,
    )
    return services.member_join(
        room=room, claims=claims, channel_name=f"c.{user_id}", options=JoinOptions(**options)
    )


def seat_index(user_id: str) -> int | None:
    seat = Seat.objects.filter(occupant__user_id=user_id).first()
    return seat.index if seat else None


def fresh(member: Member) -> Member:
    return Member.objects.get(pk=member.pk)


def codes(result: services.JoinResult) -> list[str]:
    return [notice["code"] for notice in result.notices]


# --- joining ------------------------------------------------------------------------------


def test_a_host_takes_a_host_seat_when_joining(room: Room) -> None:
    result = join(room, "h", ceiling="host", role="host", mic_on_when_joining=True)
    assert result.member.role == "host" and seat_index("h") == 0
    assert fresh(result.member).mic_on


def test_a_speaker_takes_the_index_asked_for_or_the_first_free_seat(room: Room) -> None:
    join(room, "s1", role="speaker", take_index=5)
    join(room, "s2", role="speaker")
    assert (seat_index("s1"), seat_index("s2")) == (5, 1)


@pytest.mark.parametrize("index", [0, 99, 5])
def test_a_bad_or_taken_index_joins_the_audience_with_a_notice(room: Room, index: int) -> None:
    join(room, "first", role="speaker", take_index=5)
    result = join(room, "late", role="speaker", take_index=index)
    assert codes(result) == ["seat_unavailable"]
    assert seat_index("late") is None
    assert seat_index("first") == 5  # nobody was evicted


def test_the_role_asked_for_is_capped_by_the_token(room: Room) -> None:
    result = join(room, "x", ceiling="audience", role="speaker")
    assert codes(result) == ["role_not_permitted"] and seat_index("x") is None
    result = join(room, "y", role="host")  # no ceiling in the token: speaker at most
    assert codes(result) == ["role_not_permitted"]
    assert result.member.role == "audience" and seat_index("y") == 1


def test_two_hosts_cannot_be_online_at_once(room: Room) -> None:
    join(room, "h1", ceiling="host", role="host")
    second = join(room, "h2", ceiling="host", role="host")
    assert codes(second) == ["host_exists"] and second.member.role == "audience"
    assert Member.objects.filter(room=room, role="host", online=True).count() == 1


def test_close_when_joining_locks_all_seats_unless_the_lock_state_was_set(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host", close_when_joining=True).member
    assert Seat.objects.filter(room=room, locked=False).count() == 0
    services.seat_set_locked(room=room, actor=host, index=-1, locked=False)
    services.member_leave(member=host)
    join(room, "h", ceiling="host", role="host", close_when_joining=True)
    assert Seat.objects.filter(room=room, locked=True).count() == 0


# --- requests -------------------------------------------------------------------------------


@pytest.fixture
def locked_room(room: Room) -> tuple[Room, Member]:
    host = join(room, "h", ceiling="host", role="host").member
    services.seat_set_locked(room=room, actor=host, index=-1, locked=True)
    return room, host


def test_requests_form_an_ordered_queue_and_accept_seats_on_a_locked_seat(locked_room) -> None:
    room, host = locked_room
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_request_apply(member=a)
    services.seat_request_apply(member=b, index=6)
    assert list(SeatRequest.objects.values_list("member__user_id", flat=True)) == ["a", "b"]
    services.seat_request_accept(actor=host, user_id="b")
    services.seat_request_accept(actor=host, user_id="a")
    assert (seat_index("b"), seat_index("a")) == (6, 1)
    assert fresh(a).mic_on and fresh(b).mic_on
    assert not SeatRequest.objects.exists()


def test_a_request_needs_someone_with_host_permissions(room: Room) -> None:
    with pytest.raises(ServiceError) as caught:
        services.seat_request_apply(member=add_member(room, "a"))
    assert caught.value.code == "no_host"
    assert not SeatRequest.objects.exists()


def test_one_request_per_user_and_none_from_the_seated(locked_room) -> None:
    room, host = locked_room
    a = add_member(room, "a")
    services.seat_request_apply(member=a)
    with pytest.raises(ServiceError, match="already asked"):
        services.seat_request_apply(member=a)
    services.seat_request_accept(actor=host, user_id="a")
    with pytest.raises(ServiceError) as caught:
        services.seat_request_apply(member=a)
    assert caught.value.code == "already_seated"


def test_cancel_and_reject_end_a_request(locked_room) -> None:
    room, host = locked_room
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_request_apply(member=a)
    services.seat_request_apply(member=b)
    services.seat_request_cancel(member=a)
    services.seat_request_reject(actor=host, user_id="b")
    assert not SeatRequest.objects.exists()
    with pytest.raises(ServiceError) as caught:
        services.seat_request_accept(actor=host, user_id="a")
    assert caught.value.code == "no_request"
    assert seat_index("a") is None


def test_a_lock_change_or_leaving_clears_requests(locked_room) -> None:
    room, host = locked_room
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_request_apply(member=a)
    services.seat_set_locked(room=room, actor=host, index=3, locked=False)
    assert not SeatRequest.objects.exists()
    services.seat_set_locked(room=room, actor=host, index=3, locked=True)
    services.seat_request_apply(member=b)
    services.member_disconnect(member=b, channel_name=b.channel_name)
    assert not SeatRequest.objects.exists()


def test_requests_and_invitations_time_out(locked_room) -> None:
    room, host = locked_room
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_request_apply(member=a)
    services.seat_invite(actor=host, user_id="b")
    assert services.seat_tickets_expire(room=room) == 0
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SeatRequest.objects.update(created_at=an_hour_ago)
    SeatInvitation.objects.update(created_at=an_hour_ago)
    assert services.seat_tickets_expire(room=room) == 2
    with pytest.raises(ServiceError):
        services.seat_invitation_accept(member=b)


# --- invitations ----------------------------------------------------------------------------


def test_an_invitation_cancels_the_invitees_request_and_seats_them_when_accepted(locked_room):
    room, host = locked_room
    a = add_member(room, "a")
    services.seat_request_apply(member=a)
    services.seat_invite(actor=host, user_id="a")
    assert not SeatRequest.objects.exists()
    with pytest.raises(ServiceError, match="already invited"):
        services.seat_invite(actor=host, user_id="a")
    services.seat_invitation_accept(member=a)
    assert seat_index("a") == 1 and fresh(a).mic_on


def test_a_declined_invitation_seats_nobody(locked_room) -> None:
    room, host = locked_room
    a = add_member(room, "a")
    services.seat_invite(actor=host, user_id="a")
    services.seat_invitation_reject(member=a)
    assert not SeatInvitation.objects.exists() and seat_index("a") is None


def test_only_unseated_present_users_are_invited(locked_room) -> None:
    room, host = locked_room
    with pytest.raises(ServiceError) as caught:
        services.seat_invite(actor=host, user_id="nobody")
    assert caught.value.code == "user_not_found"
    a = add_member(room, "a")
    services.seat_invite(actor=host, user_id="a")
    services.seat_invitation_accept(member=a)
    with pytest.raises(ServiceError) as caught:
        services.seat_invite(actor=host, user_id="a")
    assert caught.value.code == "already_seated"


# --- co-host, microphones, moderation ---------------------------------------------------------


def test_the_host_names_one_cohost_who_loses_the_role_off_the_seat(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host").member
    a, b = add_member(room, "a"), add_member(room, "b")
    with pytest.raises(ServiceError) as caught:
        services.cohost_set(actor=host, user_id="a", is_cohost=True)
    assert caught.value.code == "not_a_speaker"
    services.seat_take(member=a, index=1)
    services.seat_take(member=b, index=2)
    services.cohost_set(actor=host, user_id="a", is_cohost=True)
    services.cohost_set(actor=host, user_id="b", is_cohost=True)
    assert (fresh(a).role, fresh(b).role) == ("audience", "cohost")
    with pytest.raises(NotPermitted):
        services.cohost_set(actor=fresh(b), user_id="a", is_cohost=True)
    services.seat_leave(member=b)
    assert fresh(b).role == "audience"


def test_a_cohost_takes_over_while_the_host_is_away(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host").member
    a = add_member(room, "a")
    services.seat_take(member=a, index=1)
    services.cohost_set(actor=host, user_id="a", is_cohost=True)
    with pytest.raises(NotPermitted):
        services.seat_set_locked(room=room, actor=a, index=3, locked=True)
    services.member_leave(member=host)
    assert services.seat_set_locked(room=room, actor=a, index=3, locked=True) == [3]
    assert Room.objects.get(pk=room.pk).is_live  # the host leaving does not end the room


def test_a_host_leaving_ends_the_room_when_configured(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host", end_when_host_leaves=True).member
    services.member_leave(member=host)
    assert not Room.objects.get(pk=room.pk).is_live


def test_a_host_away_past_the_grace_period_ends_the_room_when_configured(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host", end_when_host_leaves=True).member
    services.member_disconnect(member=host, channel_name="c.h")
    services.seats_release_stale(room=room)  # a reload's worth of absence: nothing ends
    assert Room.objects.get(pk=room.pk).is_live
    Member.objects.filter(pk=host.pk).update(left_at=timezone.now() - timedelta(seconds=60))
    services.seats_release_stale(room=room)
    assert not Room.objects.get(pk=room.pk).is_live


def test_a_host_away_does_not_end_the_room_unless_configured(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host").member
    services.member_disconnect(member=host, channel_name="c.h")
    Member.objects.filter(pk=host.pk).update(left_at=timezone.now() - timedelta(seconds=60))
    services.seats_release_stale(room=room)
    assert Room.objects.get(pk=room.pk).is_live


def test_turning_someone_elses_microphone_on_is_only_a_request(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host").member
    a = add_member(room, "a")
    services.seat_take(member=a, index=1)
    services.microphone_turn_on(member=host, is_on=True, user_id="a")
    assert not fresh(a).mic_on
    services.microphone_turn_on(member=a, is_on=True)
    services.seat_host_mute(room=room, actor=host, index=1)
    assert not fresh(a).mic_on
    with pytest.raises(ServiceError) as caught:
        services.seat_host_mute(room=room, actor=host, index=4)
    assert caught.value.code == "seat_empty"


def test_remove_speaker_kick_and_end_by_the_host(room: Room) -> None:
    host = join(room, "h", ceiling="host", role="host").member
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_take(member=a, index=1)
    services.seat_remove_speaker(actor=host, user_id="a")
    assert seat_index("a") is None and fresh(a).online
    services.member_kick_by_user_id(actor=host, user_id="b", ban=True)
    assert fresh(b).banned and not fresh(b).online
    with pytest.raises(NotPermitted):
        services.member_kick_by_user_id(actor=fresh(a), user_id="h")
    services.room_end(room=room, by=host)
    assert not Room.objects.get(pk=room.pk).is_live
