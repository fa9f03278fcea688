"""The Content-Security-Policy header of each kind of page (the browser side: tests/browser/
test_csp.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from rooms.config import validate_config
from rooms.models import App, EmbedSession
from rooms.services import room_create


def policy_of(response) -> dict[str, list[str]]:
    parts = (part.split() for part in response["Content-Security-Policy"].split(";"))
    return {name: values for name, *values in parts}


def nonce_of(policy: dict[str, list[str]]) -> str:
    (nonce,) = [v[7:-1] for v in policy["script-src"] if v.startswith("'nonce-")]
    return nonce


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/", "/api/v1/docs"])
def test_every_page_allows_scripts_from_this_server_or_with_its_nonce(client: Client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["script-src"][0] == "'self'" and len(policy["script-src"]) <= 2
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["default-src"] == ["'self'"]


@pytest.mark.django_db
def test_the_room_page_nonces_its_scripts_and_its_row_styles(client: Client) -> None:
    client.force_login(User.objects.create_user("ada", password="x"))
    room_create(app=App.objects.get(app_id=1), room_id="jam", created_by="site-1")
    response = client.get("/rooms/jam/")
    policy = policy_of(response)
    nonce = nonce_of(policy)
    assert f"'nonce-{nonce}'" in policy["style-src"]
    page = response.content.decode()
    assert page.count(f'nonce="{nonce}"') >= 4  # htmx, its ws extension, room.js, the style
    assert f'<style nonce="{nonce}">#room {{ --row-spacing:' in page
    assert 'style="' not in page
    # Another response, another nonce.
    assert nonce_of(policy_of(client.get("/rooms/jam/"))) != nonce


def session_page(client: Client, app: App, config: dict):
    room_create(app=app, room_id="jam")
    session = EmbedSession.objects.create(
        app=app,
        key="k-" + "x" * 30,
        room_id="jam",
        user_id="u1",
        user_name="Ada",
        config=validate_config(config),
        parent_origin="https://site.test",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    return client.get(f"/embed/{app.app_id}/jam/", {"session": session.key})


@pytest.mark.django_db
def test_the_embed_page_allows_its_configs_image_origins_only(client: Client, app: App) -> None:
    config = {
        "seat": {"avatarURL": "https://Avatars.test:8443/u/{userID}.png"},
        "background": {"imageURL": "https://img.test/bg.png?a=1"},
    }
    policy = policy_of(session_page(client, app, config))
    assert policy["img-src"] == ["'self'", "data:", "https://avatars.test:8443", "https://img.test"]
    assert policy["frame-ancestors"] == ["https://site.test"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["https://{userID}.avatars.test/a.png", "https://a.test:port/x.png", "https://u@a.test/"]
)
def test_an_image_host_that_is_no_plain_name_allows_only_its_scheme(client, app, url) -> None:
    policy = policy_of(session_page(client, app, {"seat": {"avatarURL": url}}))
    assert policy["img-src"] == ["'self'", "data:", "https:"]
