"""A room's topic (issue 13, the stage): set in the lobby's form and by its host in the room;
checked like every text from outside."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rooms import services
from rooms.models import App, Room
from rooms.rendering import room_parts_html
from rooms.selectors import room_state
from rooms.services import NotPermitted, ServiceError
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def test_the_host_sets_the_topic_and_everyone_sees_it(room: Room) -> None:
    host = add_member(room, "hana", role="host")
    revision = Room.objects.get(pk=room.pk).revision
    assert services.room_set_topic(actor=host, topic="  Jazz <b>standards</b>  ") == (
        "Jazz <b>standards</b>"
    )
    room.refresh_from_db()
    assert room.topic == "Jazz <b>standards</b>" and room.revision == revision + 1
    state = room_state(room)
    assert state.topic == "Jazz <b>standards</b>" and state.as_json()["topic"] == state.topic
    html = room_parts_html(state)
    assert '<p id="room-topic" class="room-topic" hx-swap-oob="true">' in html
    assert "Jazz &lt;b&gt;standards&lt;/b&gt;" in html  # escaped by the template


@pytest.mark.parametrize("topic", ["x" * 201, "nul\x00", "two\nlines", 7, "\ud800"])
def test_a_bad_topic_is_refused_and_changes_nothing(room: Room, topic: object) -> None:
    host = add_member(room, "hana", role="host")
    services.room_set_topic(actor=host, topic="Before")
    with pytest.raises(ServiceError) as refused:
        services.room_set_topic(actor=host, topic=topic)
    assert refused.value.code == "topic_invalid"
    assert Room.objects.get(pk=room.pk).topic == "Before"


def test_only_host_permissions_set_the_topic(room: Room) -> None:
    with pytest.raises(NotPermitted):
        services.room_set_topic(actor=add_member(room, "ann"), topic="Mine")
    assert Room.objects.get(pk=room.pk).topic == ""


def test_the_lobby_form_takes_a_topic(client: Client) -> None:
    client.force_login(User.objects.create_user("ada", password="x"))
    response = client.post(
        "/rooms/new/", {"title": "Jam", "room_id": "jam", "topic": "Friday night jazz"}
    )
    assert response.status_code == 302
    room = Room.objects.get(app=App.objects.get(app_id=1), room_id="jam")
    assert room.topic == "Friday night jazz"
    assert "Friday night jazz" in client.get("/").content.decode()
    refused = client.post("/rooms/new/", {"title": "Jam", "room_id": "jam2", "topic": "a\x00b"})
    assert refused.status_code == 400 and not Room.objects.filter(room_id="jam2").exists()
