"""The permission matrix: every action x every role, through the service layer that every
entry point (socket, admin, HTTP API) shares. Refused means a clear "not permitted" and
nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from rooms import services
from rooms.models import Member, Message, Room, Seat, SeatInvitation, SeatRequest
from rooms.services import NotPermitted
from tests.conftest import add_member

pytestmark = pytest.mark.django_db

HOST_ONLY = {"host", "cohost_alone"}  # host permissions: the host, or a co-host with no host
ANY_MEMBER = {"host", "cohost_with_host", "cohost_alone", "speaker", "audience"}


@dataclass
class Scene:
    room: Room
    actor: Member


def build(room: Room, role: str) -> Scene:
    """A room with a host, a co-host, a speaker, an audience member with a raised hand and
    a seated target; then the actor of ``role`` (one of them, or a kicked / banned user)."""
    host = add_member(room, "host", role="host")
    cohost = add_member(room, "cohost", role="cohost")
    speaker, audience = add_member(room, "speaker"), add_member(room, "audience")
    hand, target = add_member(room, "hand"), add_member(room, "target")
    for member, index in ((host, 0), (cohost, 1), (speaker, 2), (target, 3)):
        Seat.objects.filter(room=room, index=index).update(occupant=member)
    Member.objects.filter(pk=target.pk).update(mic_on=True)
    Seat.objects.filter(room=room, index=5).update(locked=True)
    SeatRequest.objects.create(room=room, member=hand)
    actors = {
        "host": host,
        "cohost_with_host": cohost,
        "cohost_alone": cohost,
        "speaker": speaker,
        "audience": audience,
    }
    if role == "cohost_alone":
        Member.objects.filter(pk=host.pk).update(online=False)
    if role in ("kicked", "banned"):
        outsider = add_member(room, role, online=False)
        Member.objects.filter(pk=outsider.pk).update(banned=role == "banned")
        return Scene(room, outsider)
    return Scene(room, actors[role])


def snapshot(room: Room) -> tuple:
    return (
        list(Seat.objects.filter(room=room).values_list("index", "locked", "occupant_id")),
        list(
            Member.objects.filter(room=room)
            .order_by("pk")
            .values_list("user_id", "role", "online", "mic_on", "banned")
        ),
        list(SeatRequest.objects.values_list("member_id", flat=True)),
        list(SeatInvitation.objects.values_list("invitee_id", flat=True)),
        Room.objects.get(pk=room.pk).ended_at,
        Message.objects.count(),
    )


ACTIONS: dict[str, tuple[Callable[[Scene], object], set[str]]] = {
    "lock all": (
        lambda s: services.seat_set_locked(room=s.room, actor=s.actor, index=-1, locked=True),
        HOST_ONLY,
    ),
    "unlock a seat": (
        lambda s: (
            Seat.objects.filter(room=s.room, index=5).update(locked=True),
            services.seat_set_locked(room=s.room, actor=s.actor, index=5, locked=False),
        ),
        HOST_ONLY,
    ),
    "mute a seat": (
        lambda s: services.seat_host_mute(room=s.room, actor=s.actor, index=3),
        HOST_ONLY,
    ),
    "mute by user": (
        lambda s: services.microphone_turn_on(member=s.actor, is_on=False, user_id="target"),
        HOST_ONLY,
    ),
    "remove speaker": (
        lambda s: services.seat_remove_speaker(actor=s.actor, user_id="target"),
        HOST_ONLY,
    ),
    "accept request": (
        lambda s: services.seat_request_accept(actor=s.actor, user_id="hand"),
        HOST_ONLY,
    ),
    "reject request": (
        lambda s: services.seat_request_reject(actor=s.actor, user_id="hand"),
        HOST_ONLY,
    ),
    "invite": (lambda s: services.seat_invite(actor=s.actor, user_id="hand"), HOST_ONLY),
    "kick": (lambda s: services.member_kick_by_user_id(actor=s.actor, user_id="target"), HOST_ONLY),
    "ban": (
        lambda s: services.member_kick_by_user_id(actor=s.actor, user_id="target", ban=True),
        HOST_ONLY,
    ),
    "end the room": (lambda s: services.room_end(room=s.room, by=s.actor), HOST_ONLY),
    "name a co-host": (
        lambda s: services.cohost_set(actor=s.actor, user_id="target", is_cohost=True),
        {"host"},
    ),
    "take a free seat": (lambda s: services.seat_take(member=s.actor, index=6), ANY_MEMBER),
    "own microphone": (
        lambda s: services.microphone_turn_on(member=s.actor, is_on=True),
        ANY_MEMBER,
    ),
    "send a message": (lambda s: services.message_send(member=s.actor, text="hi"), ANY_MEMBER),
}
ROLES = ["host", "cohost_with_host", "cohost_alone", "speaker", "audience", "kicked", "banned"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_permission_matrix(room: Room, action: str, role: str) -> None:
    perform, allowed = ACTIONS[action]
    scene = build(room, role)
    before = snapshot(room)
    if role in allowed:
        perform(scene)
        assert snapshot(room) != before, f"{action} by {role} changed nothing"
    else:
        with pytest.raises(NotPermitted):
            perform(scene)
        assert snapshot(room) == before, f"{action} by {role} was refused but stored"


@pytest.mark.parametrize("role", ["host", "cohost_alone"])
def test_nobody_removes_the_host(room: Room, role: str) -> None:
    scene = build(room, role)
    before = snapshot(room)
    for attempt in (
        lambda: services.member_kick_by_user_id(actor=scene.actor, user_id="host"),
        lambda: services.seat_remove_speaker(actor=scene.actor, user_id="host"),
    ):
        with pytest.raises(services.ServiceError):  # not permitted, or not present to remove
            attempt()
    assert snapshot(room) == before
