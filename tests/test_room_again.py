"""A room ID may be started again once it ended (issue 13, broken point 3): a new live
session under the same ID, the old one kept, ended, for the admin; every entry point finds
the live session, or the latest ended one to say so."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client

from rooms.models import App, Member, Room
from rooms.services import ServiceError, room_create, room_end
from tests.test_api import Api, assert_error
from tests.test_embed_sessions import SIGN, SITE, body_for, post

pytestmark = pytest.mark.django_db


def test_an_ended_room_id_starts_a_new_session_and_keeps_the_old(app: App) -> None:
    first = room_create(app=app, room_id="jam", title="Jam")
    Member.objects.create(room=first, user_id="ann", user_name="Ann")
    room_end(room=first)
    again = room_create(app=app, room_id="jam", title="Jam, again")
    assert again.pk != first.pk and again.is_live
    first.refresh_from_db()
    assert not first.is_live and first.members.filter(user_id="ann").exists()
    assert not again.members.exists()
    assert Room.objects.current(app=app, room_id="jam") == again
    with pytest.raises(ServiceError) as taken:
        room_create(app=app, room_id="jam")
    assert taken.value.code == "room_exists"
    # The database holds the rule whatever the code does: one live session an ID.
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(app=app, room_id="jam")
    room_end(room=again)
    assert Room.objects.current(app=app, room_id="jam") == again  # the latest, ended


@pytest.fixture
def host(client: Client) -> tuple[Client, User]:
    user = User.objects.create_user("ada", password="x")
    client.force_login(user)
    return client, user


def test_the_ended_room_page_leads_on_and_its_host_starts_it_again(
    host: tuple[Client, User],
) -> None:
    client, user = host
    assert client.post("/rooms/new/", {"title": "Jam", "room_id": "jam"}).status_code == 302
    room_end(room=Room.objects.get(room_id="jam"))
    page = client.get("/rooms/jam/")
    assert page.status_code == 410
    html = page.content.decode()
    assert 'href="/" id="back-to-lobby"' in html and 'id="restart-room"' in html

    other = Client()
    other.force_login(User.objects.create_user("bob", password="x"))
    theirs = other.get("/rooms/jam/").content.decode()
    assert 'id="back-to-lobby"' in theirs and "restart-room" not in theirs

    restarted = client.post("/rooms/new/", {"title": "Jam", "room_id": "jam"})
    assert restarted.status_code == 302 and restarted["Location"] == "/rooms/jam/"
    assert client.get("/rooms/jam/").status_code == 200
    assert Room.objects.filter(room_id="jam").count() == 2
    live = Room.objects.get(room_id="jam", ended_at__isnull=True)
    assert live.created_by == f"site-{user.pk}"


def test_the_http_api_starts_an_ended_room_again(app: App) -> None:
    api = Api(app)
    assert api.post("/rooms", {"roomID": "jam"}).status_code == 201
    api.post("/rooms/jam/end")
    assert_error(api.post("/rooms/jam/messages", {"text": "late"}), 409, "room_ended")
    again = api.post("/rooms", {"roomID": "jam"})
    assert again.status_code == 201 and again.json()["live"] is True
    assert api.get("/rooms/jam").json()["live"] is True
    assert api.post("/rooms/jam/messages", {"text": "back"}).status_code == 201
    assert_error(api.post("/rooms", {"roomID": "jam"}), 409, "room_exists")
    ended = api.get("/rooms", status="ended").json()["rooms"]
    assert [r["roomID"] for r in ended] == ["jam"]


def test_a_host_session_starts_an_ended_room_again_and_an_audience_one_is_told(
    client: Client,
) -> None:
    test_app = App.objects.create(
        app_id=9002, name="Test app", app_sign=SIGN, test_mode=True, allowed_origins=SITE
    )
    room_end(room=room_create(app=test_app, room_id="jam"))
    audience = post(client, body_for(test_app, appSign=SIGN, config={"role": "audience"}))
    assert audience.status_code == 410 and audience.json()["code"] == "room_ended"
    hosted = post(client, body_for(test_app, appSign=SIGN, config={"role": "host"}))
    assert hosted.status_code == 201, hosted.content
    assert Room.objects.filter(app=test_app, room_id="jam", ended_at__isnull=True).count() == 1
    again = post(client, body_for(test_app, appSign=SIGN, config={"role": "audience"}))
    assert again.status_code == 201, again.content
