from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rooms.models import App, Room
from rooms.tokens import token_verify

pytestmark = pytest.mark.django_db


def test_mint_token_prints_a_token_the_socket_accepts(app: App) -> None:
    out = StringIO()
    call_command(
        "mint_token",
        "--app-id",
        str(app.app_id),
        "--room-id",
        "jam",
        "--user-id",
        "u-42",
        "--user-name",
        "Ada",
        "--role",
        "host",
        stdout=out,
    )
    claims = token_verify(token=out.getvalue().strip(), app=app, room_id="jam")
    assert (claims.user_id, claims.role) == ("u-42", "host")


def test_mint_token_refuses_an_unknown_app() -> None:
    with pytest.raises(CommandError, match="No app"):
        call_command(
            "mint_token",
            "--app-id",
            "999",
            "--room-id",
            "jam",
            "--user-id",
            "u",
            "--user-name",
            "U",
        )


def test_setup_demo_is_idempotent_and_prints_the_urls() -> None:
    out = StringIO()
    call_command("setup_demo", stdout=out)
    call_command("setup_demo", "--base-url", "http://h:1", stdout=out)
    assert "http://h:1/rooms/demo/" in out.getvalue()
    assert Room.objects.filter(room_id="demo", ended_at__isnull=True).count() == 2
