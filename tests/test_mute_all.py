"""Mute all (issue 13, useful extras): one host action turns off every seated microphone but
the host's own, in one change; nobody else may."""

from __future__ import annotations

import pytest

from rooms import services
from rooms.models import Member, Room
from rooms.services import NotPermitted
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def seated(room: Room, user_id: str, index: int, *, role: str = "audience") -> Member:
    member = add_member(room, user_id, role=role)
    services.seat_take(member=member, index=index)
    services.microphone_turn_on(member=member, is_on=True)
    return Member.objects.get(pk=member.pk)


def test_mute_all_turns_off_every_seat_but_the_hosts_own_in_one_change(room: Room) -> None:
    host = seated(room, "hana", 0, role="host")
    seated(room, "ann", 1)
    seated(room, "bob", 2)
    quiet = seated(room, "cy", 3)
    services.microphone_turn_on(member=quiet, is_on=False)
    add_member(room, "dee")  # in the audience: nothing to mute
    before = Room.objects.get(pk=room.pk).revision
    assert services.seat_host_mute_all(room=room, actor=host) == ["ann", "bob"]
    assert Room.objects.get(pk=room.pk).revision == before + 1
    mics = dict(Member.objects.filter(room=room).values_list("user_id", "mic_on"))
    assert mics == {"hana": True, "ann": False, "bob": False, "cy": False, "dee": False}
    assert services.seat_host_mute_all(room=room, actor=host) == []  # nothing left: no change
    assert Room.objects.get(pk=room.pk).revision == before + 1


def test_only_host_permissions_mute_all(room: Room) -> None:
    seated(room, "hana", 0, role="host")
    ann = seated(room, "ann", 1)
    seated(room, "bob", 2)
    with pytest.raises(NotPermitted):
        services.seat_host_mute_all(room=room, actor=ann)
    assert Member.objects.get(room=room, user_id="bob").mic_on is True
