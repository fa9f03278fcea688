from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms import services
from rooms.models import App, Member, Message, Room, Seat
from rooms.selectors import room_state
from rooms.services import NotPermitted, ServiceError
from rooms.tokens import TokenClaims
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def claims(room: Room, user_id: str, role: str | None = None, name: str = "") -> TokenClaims:
    return TokenClaims(
        app_id=room.app.app_id,
        room_id=room.room_id,
        user_id=user_id,
        user_name=name or user_id.title(),
        role=role,
    )


def seat_of(member: Member) -> int | None:
    seat = Seat.objects.filter(occupant=member).first()
    return seat.index if seat else None


# --- rooms ----------------------------------------------------------------------------------


def test_a_new_room_has_the_seats_of_its_layout(app: App) -> None:
    room = services.room_create(app=app, room_id="r", seat_rows=[1, 4, 3], host_indexes=[0])
    assert list(room.seats.values_list("index", flat=True)) == list(range(8))


@pytest.mark.parametrize(
    ("rows", "hosts"), [([], [0]), ([0, 4], [0]), ([40, 40], [0]), ([4], [4]), ([4], ["0"])]
)
def test_a_bad_layout_is_refused(app: App, rows: list, hosts: list) -> None:
    with pytest.raises(ServiceError) as caught:
        services.room_create(app=app, room_id="r", seat_rows=rows, host_indexes=hosts)
    assert caught.value.code == "bad_layout"
    assert not Room.objects.filter(room_id="r").exists()


def test_a_room_id_is_unique_within_its_app_only(app: App) -> None:
    services.room_create(app=app, room_id="same")
    with pytest.raises(ServiceError):
        services.room_create(app=app, room_id="same")
    other = App.objects.create(app_id=99, name="Other")
    services.room_create(app=other, room_id="same")


@pytest.mark.parametrize("room_id", ["<script>", "jam\n", "", "a" * 65, "ja\x00m"])
def test_a_room_id_with_odd_characters_is_refused(app: App, room_id: str) -> None:
    """A ServiceError like every refusal (not Django's ValidationError), a trailing line
    break included (a ``$`` regex lets it through)."""
    with pytest.raises(ServiceError) as caught:
        services.room_create(app=app, room_id=room_id)
    assert caught.value.code == "room_id_invalid"
    assert not Room.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("title", "nul\x00"), ("created_by", "u\ud800")])
def test_a_room_name_that_cannot_be_stored_is_refused(app: App, field: str, value: str) -> None:
    with pytest.raises(ServiceError) as caught:
        services.room_create(app=app, room_id="r", **{field: value})
    assert caught.value.code == f"{field}_invalid"
    assert not Room.objects.exists()


# --- joining --------------------------------------------------------------------------------


def test_joining_makes_an_online_member_with_the_token_role(room: Room) -> None:
    host = services.member_join(
        room=room,
        claims=claims(room, "h", "host"),
        channel_name="c1",
        options=services.JoinOptions(role="host"),
    )
    guest = services.member_join(room=room, claims=claims(room, "g"), channel_name="c2")
    assert host.member.role == "host" and host.member.online
    assert guest.member.role == "audience"


def test_a_second_tab_replaces_the_first(room: Room) -> None:
    services.member_join(room=room, claims=claims(room, "u"), channel_name="tab-1")
    second = services.member_join(room=room, claims=claims(room, "u"), channel_name="tab-2")
    assert second.replaced_channel == "tab-1"
    # The first tab's disconnect must not take the second one offline.
    services.member_disconnect(member=second.member, channel_name="tab-1")
    assert Member.objects.get(pk=second.member.pk).online


def test_a_banned_user_cannot_rejoin(room: Room) -> None:
    joined = services.member_join(room=room, claims=claims(room, "b"), channel_name="c")
    services.member_ban(member=joined.member)
    with pytest.raises(ServiceError) as caught:
        services.member_join(room=room, claims=claims(room, "b"), channel_name="c2")
    assert caught.value.code == "banned"


def test_nobody_joins_an_ended_room(room: Room) -> None:
    services.room_end(room=room)
    with pytest.raises(ServiceError) as caught:
        services.member_join(room=room, claims=claims(room, "late"), channel_name="c")
    assert caught.value.code == "room_ended"
    assert not Member.objects.filter(user_id="late").exists()


# --- seats ----------------------------------------------------------------------------------


def test_taking_a_seat_and_switching(room: Room) -> None:
    member = add_member(room, "a")
    services.seat_take(member=member, index=1)
    services.seat_take(member=member, index=3)
    assert seat_of(member) == 3
    assert Seat.objects.get(room=room, index=1).occupant is None


def test_a_taken_seat_is_refused_and_the_taker_keeps_their_own(room: Room) -> None:
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_take(member=a, index=1)
    services.seat_take(member=b, index=2)
    with pytest.raises(ServiceError) as caught:
        services.seat_take(member=b, index=1)
    assert caught.value.code == "seat_taken"
    assert (seat_of(a), seat_of(b)) == (1, 2)


@pytest.mark.parametrize("index", [-1, 8, 10_000])
def test_a_seat_out_of_range_is_refused(room: Room, index: int) -> None:
    with pytest.raises(ServiceError) as caught:
        services.seat_take(member=add_member(room, "a"), index=index)
    assert caught.value.code == "seat_out_of_range"


def test_only_the_host_sits_on_a_host_seat(room: Room) -> None:
    with pytest.raises(ServiceError) as caught:
        services.seat_take(member=add_member(room, "a"), index=0)
    assert caught.value.code == "host_seat"
    host = add_member(room, "h", role="host")
    services.seat_take(member=host, index=0)
    assert seat_of(host) == 0


def test_a_locked_seat_cannot_be_taken(room: Room) -> None:
    host = add_member(room, "h", role="host")
    services.seat_set_locked(room=room, actor=host, index=-1, locked=True)
    with pytest.raises(ServiceError) as caught:
        services.seat_take(member=add_member(room, "a"), index=2)
    assert caught.value.code == "seat_locked"


def test_locking_all_seats_keeps_their_occupants(room: Room) -> None:
    host, a = add_member(room, "h", role="host"), add_member(room, "a")
    services.seat_take(member=a, index=2)
    changed = services.seat_set_locked(room=room, actor=host, index=-1, locked=True)
    assert changed == list(range(8))
    assert seat_of(a) == 2
    assert services.seat_set_locked(room=room, actor=host, index=5, locked=False) == [5]


@pytest.mark.parametrize("role", ["audience", "speaker"])
def test_only_host_permissions_lock_seats(room: Room, role: str) -> None:
    member = add_member(room, "x", role=role)
    with pytest.raises(NotPermitted):
        services.seat_set_locked(room=room, actor=member, index=-1, locked=True)
    assert not Seat.objects.filter(room=room, locked=True).exists()


def test_a_cohost_locks_only_while_no_host_is_present(room: Room) -> None:
    cohost = add_member(room, "c", role="cohost")
    host = add_member(room, "h", role="host")
    with pytest.raises(NotPermitted):
        services.seat_set_locked(room=room, actor=cohost, index=1, locked=True)
    services.member_disconnect(member=host, channel_name=host.channel_name)
    assert services.seat_set_locked(room=room, actor=cohost, index=1, locked=True) == [1]


def test_a_member_of_another_room_cannot_lock_this_one(room: Room, app: App) -> None:
    other = services.room_create(app=app, room_id="other")
    host_elsewhere = add_member(other, "h", role="host")
    with pytest.raises(NotPermitted):
        services.seat_set_locked(room=room, actor=host_elsewhere, index=-1, locked=True)


def test_leaving_a_seat(room: Room) -> None:
    a = add_member(room, "a")
    with pytest.raises(ServiceError) as caught:
        services.seat_leave(member=a)
    assert caught.value.code == "not_seated"
    services.seat_take(member=a, index=4)
    services.seat_leave(member=a)
    assert seat_of(a) is None


def test_the_database_holds_one_user_one_seat_and_one_seat_one_user(room: Room) -> None:
    a, b = add_member(room, "a"), add_member(room, "b")
    Seat.objects.filter(room=room, index=1).update(occupant=a)
    with pytest.raises(IntegrityError), transaction.atomic():
        Seat.objects.filter(room=room, index=2).update(occupant=a)
    with pytest.raises(IntegrityError), transaction.atomic():
        Seat.objects.create(room=room, index=1, occupant=b)


def test_an_offline_users_seat_frees_after_the_grace_period_only(room: Room) -> None:
    a = add_member(room, "a")
    services.seat_take(member=a, index=1)
    services.member_disconnect(member=a, channel_name=a.channel_name)
    assert services.seats_release_stale(room=room) == []  # within the grace period
    Member.objects.filter(pk=a.pk).update(left_at=timezone.now() - timedelta(seconds=60))
    assert services.seats_release_stale(room=room) == [1]
    assert seat_of(a) is None


def test_an_offline_user_cannot_act(room: Room) -> None:
    a = add_member(room, "a", online=False)
    with pytest.raises(NotPermitted):
        services.seat_take(member=a, index=1)


# --- microphone and chat --------------------------------------------------------------------


def test_turning_the_microphone_on_and_off(room: Room) -> None:
    a = add_member(room, "a")
    services.microphone_turn_on(member=a, is_on=True)
    assert Member.objects.get(pk=a.pk).mic_on
    services.microphone_turn_on(member=a, is_on=False)
    assert not Member.objects.get(pk=a.pk).mic_on


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "message_empty"), ("   ", "message_empty"), ("x" * 1001, "message_too_long")],
)
def test_bad_messages_are_refused_and_nothing_is_stored(room: Room, text: str, code: str) -> None:
    with pytest.raises(ServiceError) as caught:
        services.message_send(member=add_member(room, "a"), text=text)
    assert caught.value.code == code
    assert not Message.objects.exists()


def test_a_message_of_exactly_the_limit_is_kept_as_written(room: Room) -> None:
    text = "<b>" + "x" * 997
    message = services.message_send(member=add_member(room, "a"), text=text)
    assert Message.objects.get(pk=message.pk).text == text


def test_deleting_a_message_hides_it_but_keeps_the_row(room: Room) -> None:
    message = services.message_send(member=add_member(room, "a"), text="oops")
    services.message_delete(message=message)
    assert Message.objects.get(pk=message.pk).deleted


# --- moderation -----------------------------------------------------------------------------


def test_kicking_frees_the_seat_and_takes_the_user_offline(room: Room) -> None:
    a = add_member(room, "a")
    services.seat_take(member=a, index=1)
    services.member_kick(member=a)
    fresh = Member.objects.get(pk=a.pk)
    assert not fresh.online and seat_of(fresh) is None and not fresh.banned


def test_an_audience_member_cannot_kick(room: Room) -> None:
    a, b = add_member(room, "a"), add_member(room, "b")
    with pytest.raises(NotPermitted):
        services.member_kick(member=b, by=a)
    assert Member.objects.get(pk=b.pk).online


def test_ending_a_room_clears_seats_and_members(room: Room) -> None:
    a = add_member(room, "a")
    services.seat_take(member=a, index=1)
    services.room_end(room=room)
    room.refresh_from_db()
    assert room.ended_at is not None
    assert not Seat.objects.filter(room=room, occupant__isnull=False).exists()
    assert not Member.objects.filter(room=room, online=True).exists()
    with pytest.raises(ServiceError):
        services.message_send(member=a, text="still here?")


# --- revisions ------------------------------------------------------------------------------


def revision_of(room: Room) -> int:
    return room_state(room).revision


def test_every_room_change_counts_a_revision_and_a_refusal_none(room: Room) -> None:
    host = services.member_join(
        room=room, claims=claims(room, "h", "host"), channel_name="c1"
    ).member
    before = revision_of(room)
    services.seat_take(member=host, index=1)
    services.microphone_turn_on(member=host, is_on=True)
    assert revision_of(room) == before + 2
    with pytest.raises(ServiceError):
        services.seat_take(member=add_member(room, "late"), index=1)  # taken: nothing stored
    assert revision_of(room) == before + 2
    services.member_disconnect(member=host, channel_name="c1")
    assert revision_of(room) == before + 3


def test_the_revision_travels_with_the_state_json(room: Room) -> None:
    services.member_join(room=room, claims=claims(room, "h", "host"), channel_name="c1")
    state = room_state(room)
    assert state.revision > 0
    assert type(state).from_json(state.as_json()) == state
