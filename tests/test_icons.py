"""The seat tools are SVG icons with names, not emoji (issue 13, point 5: with no emoji font
installed they were empty boxes)."""

from __future__ import annotations

import re

import pytest

from rooms import services
from rooms.models import Room
from rooms.rendering import room_parts_html
from rooms.selectors import room_state
from tests.conftest import add_member

pytestmark = pytest.mark.django_db

EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


def test_seat_tools_are_named_svg_icons(room: Room) -> None:
    services.seat_take(member=add_member(room, "sam"), index=2)
    services.seat_set_locked(room=room, actor=None, index=3, locked=True)
    html = room_parts_html(room_state(room))
    seats = html.split('<aside id="members"')[0]
    assert not EMOJI.search(seats), EMOJI.findall(seats)
    tools = re.findall(
        r"<button[^>]*class=\"seat-(?:local-mute|host-mute|ask-unmute|lock)[^>]*>.*?</button>",
        seats,
        re.S,
    )
    assert len(tools) >= 3
    for tool in tools:
        assert "<svg" in tool and 'aria-label="' in tool and 'title="' in tool, tool
