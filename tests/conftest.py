from __future__ import annotations

import pytest

from rooms.models import App, Member, Room
from rooms.services import room_create


@pytest.fixture(autouse=True)
def _quick_grace(settings) -> None:
    # Seats of disconnected users free after the grace period; tests wait for it, briefly.
    settings.LIVEAUDIO_SEAT_GRACE_SECONDS = 0.3


@pytest.fixture
def app(db) -> App:
    return App.objects.create(app_id=424242, name="Integrator", allowed_origins="https://site.test")


@pytest.fixture
def room(app: App) -> Room:
    return room_create(app=app, room_id="friday-jam", title="Friday jam", created_by="host-1")


def add_member(room: Room, user_id: str, *, role: str = "audience", online: bool = True) -> Member:
    return Member.objects.create(
        room=room,
        user_id=user_id,
        user_name=user_id.title(),
        role=role,
        online=online,
        channel_name=f"test.{user_id}" if online else "",
    )
