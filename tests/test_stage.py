"""Under the stage, the audience as avatars and a count; an empty chat says so (issue 13)."""

from __future__ import annotations

import pytest

from rooms import services
from rooms.models import Room
from rooms.rendering import (
    DEFAULT_CONFIG,
    DEFAULT_PARTS_VIEW,
    LISTENERS_SHOWN,
    chat_html,
    room_parts_context,
    room_parts_html,
)
from rooms.selectors import room_state
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def test_listeners_show_as_a_count_then_avatars(room: Room) -> None:
    for i in range(LISTENERS_SHOWN + 6):
        add_member(room, f"listener-{i:02}")
    add_member(room, "gone", online=False)
    services.seat_take(member=add_member(room, "speaker"), index=2)
    html = room_parts_html(room_state(room))
    stage = html.split('<div class="listeners"')[1].split("</section>")[0]
    assert stage.count('<li class="listener" data-user-id="listener-') == LISTENERS_SHOWN
    assert f"{LISTENERS_SHOWN + 6} listening" in stage.split("<ul>")[0]  # before the avatars
    assert "and 6 more" in stage.split("</ul>")[1]
    assert 'data-user-id="gone"' not in stage and 'data-user-id="speaker"' not in stage
    few = room_parts_context(room_state(room))
    assert few["listeners_count"] == LISTENERS_SHOWN + 6


def test_a_small_audience_is_counted_and_none_shows_nothing(room: Room) -> None:
    assert 'class="listeners"' not in room_parts_html(room_state(room))
    add_member(room, "ann")
    assert "1 listening" in room_parts_html(room_state(room))


def test_an_empty_chat_says_so() -> None:
    assert "No messages yet" in chat_html([])


def test_an_empty_stage_says_so_until_someone_takes_a_seat(room: Room) -> None:
    ann = add_member(room, "ann")
    assert "No one is on stage yet." in room_parts_html(room_state(room))
    services.seat_take(member=ann, index=2)
    assert "No one is on stage yet." not in room_parts_html(room_state(room))
    texts = {"innerText": {**DEFAULT_CONFIG["innerText"], "emptyStageMessage": "Stage is free"}}
    services.seat_leave(member=ann)
    html = room_parts_html(room_state(room), parts={**DEFAULT_PARTS_VIEW, **texts})
    assert "Stage is free" in html
