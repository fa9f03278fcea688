from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rooms.models import App, Room
from rooms.services import room_create, room_end
from rooms.tokens import token_mint

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_app() -> App:
    return App.objects.get(app_id=1)  # made by the migration


@pytest.fixture
def signed_in(client: Client) -> Client:
    client.force_login(User.objects.create_user("ada", password="x"))
    return client


def test_the_lobby_lists_live_site_rooms_only(client: Client, site_app: App, app: App) -> None:
    room_create(app=site_app, room_id="live", title="Live <one>")
    room_end(room=room_create(app=site_app, room_id="over", title="Over"))
    room_create(app=app, room_id="theirs", title="Someone else's")
    page = client.get("/").content.decode()
    assert "Live &lt;one&gt;" in page
    assert "Over" not in page and "Someone else" not in page


def test_creating_a_room_makes_the_creator_its_host(signed_in: Client, site_app: App) -> None:
    response = signed_in.post("/rooms/new/", {"title": "Jam", "room_id": "jam"})
    assert response.status_code == 302 and response["Location"] == "/rooms/jam/"
    page = signed_in.get("/rooms/jam/").content.decode()
    assert 'ws-connect="/ws/rooms/1/jam/?token=' in page
    room = Room.objects.get(room_id="jam")
    assert room.created_by.startswith("site-") and room.seats.count() == 8


@pytest.mark.parametrize("room_id", ["", "has space", "<x>", "a" * 65])
def test_a_bad_room_id_is_refused_with_a_message(signed_in: Client, site_app, room_id) -> None:
    response = signed_in.post("/rooms/new/", {"title": "Jam", "room_id": room_id})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert not Room.objects.exclude(room_id="demo").exists()


def test_a_taken_room_id_is_refused(signed_in: Client, site_app: App) -> None:
    room_create(app=site_app, room_id="jam")
    response = signed_in.post("/rooms/new/", {"title": "Again", "room_id": "jam"})
    assert response.status_code == 400 and "already exists" in response.content.decode()


def test_the_room_page_needs_a_signed_in_user(client: Client, site_app: App) -> None:
    room_create(app=site_app, room_id="jam")
    assert client.get("/rooms/jam/")["Location"].startswith("/accounts/login/")


def test_the_room_page_cannot_be_framed(signed_in: Client, site_app: App) -> None:
    room_create(app=site_app, room_id="jam")
    assert signed_in.get("/rooms/jam/")["X-Frame-Options"] == "DENY"


def test_an_ended_room_says_so(signed_in: Client, site_app: App) -> None:
    room_end(room=room_create(app=site_app, room_id="jam"))
    response = signed_in.get("/rooms/jam/")
    assert response.status_code == 410 and "has ended" in response.content.decode()


def test_the_embed_page_is_framable_by_the_apps_origins_only(client: Client, app: App) -> None:
    room_create(app=app, room_id="jam")
    token = token_mint(app=app, room_id="jam", user_id="u1", user_name="U")
    response = client.get(f"/embed/{app.app_id}/jam/", {"token": token})
    assert response.status_code == 200
    assert "frame-ancestors https://site.test" in response["Content-Security-Policy"].split("; ")
    assert "X-Frame-Options" not in response


def test_an_app_without_origins_may_be_framed_by_nobody(client: Client) -> None:
    app = App.objects.create(app_id=77, name="Closed")
    room_create(app=app, room_id="jam")
    token = token_mint(app=app, room_id="jam", user_id="u1", user_name="U")
    response = client.get("/embed/77/jam/", {"token": token})
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"].split("; ")


@pytest.mark.parametrize("token", ["", "junk"])
def test_the_embed_page_refuses_a_bad_token(client: Client, app: App, token: str) -> None:
    room_create(app=app, room_id="jam")
    response = client.get(f"/embed/{app.app_id}/jam/", {"token": token})
    assert response.status_code == 403
    assert b"token" in response.content


def test_signing_up_signs_in(client: Client, site_app: App) -> None:
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "a-long-password-1", "password2": "a-long-password-1"},
    )
    assert response.status_code == 302
    assert "Signed in as" in client.get("/").content.decode()
