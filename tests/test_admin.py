"""Moderation from Django admin goes through the services, and reaches live sockets."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rooms import services
from rooms.models import Member, Message, Room, Seat
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("op", password="x"))
    return client


def run_action(client: Client, model: str, action: str, pks: list[int]) -> None:
    response = client.post(
        f"/admin/rooms/{model}/", {"action": action, "_selected_action": pks}, follow=True
    )
    assert response.status_code == 200


def test_every_admin_page_renders(operator: Client, room: Room) -> None:
    member = add_member(room, "a")
    message = services.message_send(member=member, text="hi")
    for path in [
        "/admin/rooms/app/",
        "/admin/rooms/room/",
        f"/admin/rooms/room/{room.pk}/change/",
        "/admin/rooms/member/",
        "/admin/rooms/seat/",
        "/admin/rooms/message/",
        f"/admin/rooms/message/{message.pk}/change/",
    ]:
        assert operator.get(path).status_code == 200, path


def test_ending_a_room_from_admin(operator: Client, room: Room) -> None:
    run_action(operator, "room", "end_now", [room.pk])
    room.refresh_from_db()
    assert room.ended_at is not None


def test_kick_and_ban_from_admin(operator: Client, room: Room) -> None:
    a, b = add_member(room, "a"), add_member(room, "b")
    services.seat_take(member=a, index=1)
    run_action(operator, "member", "kick", [a.pk])
    run_action(operator, "member", "ban", [b.pk])
    a.refresh_from_db()
    b.refresh_from_db()
    assert not a.online and not a.banned and not Seat.objects.filter(occupant=a).exists()
    assert b.banned and not b.online
    run_action(operator, "member", "unban", [b.pk])
    assert not Member.objects.get(pk=b.pk).banned


def test_seats_unlock_lock_and_clear_from_admin(operator: Client, room: Room) -> None:
    a = add_member(room, "a")
    services.seat_take(member=a, index=3)
    seat = Seat.objects.get(room=room, index=3)
    run_action(operator, "seat", "lock", [seat.pk])
    assert Seat.objects.get(pk=seat.pk).locked
    run_action(operator, "seat", "unlock", [seat.pk])
    assert not Seat.objects.get(pk=seat.pk).locked
    run_action(operator, "seat", "clear_occupant", [seat.pk])
    assert Seat.objects.get(pk=seat.pk).occupant is None
    assert Member.objects.get(pk=a.pk).online


def test_deleting_messages_hides_them_and_there_is_no_hard_delete(
    operator: Client, room: Room
) -> None:
    message = services.message_send(member=add_member(room, "a"), text="spam")
    page = operator.get("/admin/rooms/message/").content.decode()
    assert 'value="delete_selected"' not in page
    run_action(operator, "message", "hide", [message.pk])
    assert Message.objects.get(pk=message.pk).deleted
    operator.post(f"/admin/rooms/message/{message.pk}/delete/", {"post": "yes"})
    assert Message.objects.filter(pk=message.pk).exists()


def test_non_staff_cannot_moderate(client: Client, room: Room) -> None:
    client.force_login(User.objects.create_user("nobody", password="x"))
    client.post("/admin/rooms/room/", {"action": "end_now", "_selected_action": [room.pk]})
    room.refresh_from_db()
    assert room.ended_at is None


def test_a_room_added_in_admin_is_made_by_room_create_with_its_seats(
    operator: Client, room: Room
) -> None:
    form = {"app": room.app.pk, "room_id": "from-admin", "title": "Ops", "created_by": "op"}
    response = operator.post("/admin/rooms/room/add/", {**form, "seat_rows": "[3, 2]"})
    assert response.status_code == 302, response.content.decode()[:2000]
    added = Room.objects.get(room_id="from-admin")
    assert (added.seat_rows, added.host_indexes) == ([3, 2], [0])
    assert list(added.seats.values_list("index", flat=True)) == [0, 1, 2, 3, 4]
    default = operator.post("/admin/rooms/room/add/", {**form, "room_id": "default-layout"})
    assert default.status_code == 302
    assert Room.objects.get(room_id="default-layout").seats.count() == 8


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("title", "bell\x07", "control characters"),
        ("seat_rows", "[0]", "Seat rows must be positive counts"),
        ("seat_rows", "[100]", "Seat rows must be positive counts"),
    ],
)
def test_admin_shows_room_create_refusals_at_their_field(
    operator: Client, room: Room, field: str, value: str, why: str
) -> None:
    form = {"app": room.app.pk, "room_id": "bad", "title": "", "created_by": "", field: value}
    response = operator.post("/admin/rooms/room/add/", form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert why in " ".join(errors.get(field, [])), errors
    assert not Room.objects.filter(room_id="bad").exists()
