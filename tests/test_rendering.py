from __future__ import annotations

import pytest

from rooms import services
from rooms.models import Room
from rooms.rendering import MEMBER_LIST_MAX, room_parts_html
from rooms.selectors import room_state
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def test_a_big_rooms_member_list_shows_the_seated_first_and_counts_the_rest(room: Room) -> None:
    for i in range(MEMBER_LIST_MAX + 10):
        add_member(room, f"listener-{i:03}")
    services.seat_take(member=add_member(room, "zz-speaker"), index=2)
    html = room_parts_html(room_state(room))
    assert html.count("<li data-user-id=") == MEMBER_LIST_MAX
    assert 'data-user-id="zz-speaker" class="member' in html
    assert "and 11 more listening" in html
