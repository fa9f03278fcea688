from __future__ import annotations

import time

import jwt
import pytest

from rooms.models import App
from rooms.realtime.close_codes import CLOSE_CODES
from rooms.services import ServiceError
from rooms.tokens import TokenError, token_mint, token_verify


def test_a_minted_token_verifies_with_its_claims(app: App) -> None:
    token = token_mint(app=app, room_id="r1", user_id="u-42", user_name="Ada", role="host")
    claims = token_verify(token=token, app=app, room_id="r1")
    assert (claims.user_id, claims.user_name, claims.role, claims.app_id) == (
        "u-42",
        "Ada",
        "host",
        app.app_id,
    )


def test_a_token_has_iat_and_exp(app: App) -> None:
    token = token_mint(app=app, room_id="r1", user_id="u", user_name="U", ttl_seconds=60, now=1000)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iat"] == 1000 and payload["exp"] == 1060
    assert "role" not in payload


@pytest.mark.parametrize(
    ("token_for", "code", "close_code"),
    [
        ("missing", "token_missing", 4001),
        ("garbage", "token_invalid", 4002),
        ("forged", "token_invalid", 4002),
        ("expired", "token_expired", 4003),
        ("other_room", "token_wrong_room", 4004),
        ("other_app", "token_wrong_app", 4004),
        ("no_user", "token_invalid", 4002),
        ("bad_role", "token_invalid", 4002),
    ],
)
def test_bad_tokens_are_refused_with_a_clear_code(
    app: App, token_for: str, code: str, close_code: int
) -> None:
    other = App.objects.create(app_id=7, name="Other")
    now = int(time.time())
    base = {
        "app_id": app.app_id,
        "room_id": "r1",
        "user_id": "u",
        "user_name": "U",
        "iat": now,
        "exp": now + 60,
    }
    tokens = {
        "missing": None,
        "garbage": "not.a.jwt",
        "forged": jwt.encode(base, "0" * 64, algorithm="HS256"),
        "expired": jwt.encode(
            {**base, "iat": now - 120, "exp": now - 60}, app.app_sign, algorithm="HS256"
        ),
        "other_room": token_mint(app=app, room_id="r2", user_id="u", user_name="U"),
        "other_app": jwt.encode({**base, "app_id": other.app_id}, app.app_sign, algorithm="HS256"),
        "no_user": jwt.encode(
            {k: v for k, v in base.items() if k != "user_id"}, app.app_sign, algorithm="HS256"
        ),
        "bad_role": jwt.encode({**base, "role": "emperor"}, app.app_sign, algorithm="HS256"),
    }
    with pytest.raises(TokenError) as caught:
        token_verify(token=tokens[token_for], app=app, room_id="r1")
    assert caught.value.code == code
    assert caught.value.close_code == close_code


def test_the_none_algorithm_is_refused(app: App) -> None:
    now = int(time.time())
    unsigned = jwt.encode(
        {
            "app_id": app.app_id,
            "room_id": "r1",
            "user_id": "u",
            "user_name": "U",
            "iat": now,
            "exp": now + 60,
        },
        None,
        algorithm="none",
    )
    with pytest.raises(TokenError):
        token_verify(token=unsigned, app=app, room_id="r1")


@pytest.mark.parametrize(
    ("user_id", "user_name", "role"), [("", "U", None), ("u", "x" * 65, None), ("u", "U", "god")]
)
def test_minting_refuses_bad_identities(app: App, user_id: str, user_name: str, role) -> None:
    with pytest.raises(ValueError):
        token_mint(app=app, room_id="r1", user_id=user_id, user_name=user_name, role=role)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "u\ud800"),
        ("user_id", "nul\x00"),
        ("user_id", "two\nlines"),
        ("user_name", "Ada\udfff"),
        ("user_name", "bell\x07"),
    ],
)
def test_a_signed_token_with_text_that_cannot_be_stored_is_refused_as_invalid(
    app: App, field: str, value: str
) -> None:
    """Validly signed, so only the text rules can refuse it: a clear 4002, not a crash."""
    now = int(time.time())
    payload = {"app_id": app.app_id, "room_id": "r1", "user_id": "u", "user_name": "U"}
    payload |= {"iat": now, "exp": now + 60, field: value}
    token = jwt.encode(payload, app.app_sign, algorithm="HS256")
    with pytest.raises(TokenError) as caught:
        token_verify(token=token, app=app, room_id="r1")
    assert caught.value.code == "token_invalid" and field in caught.value.message
    assert caught.value.close_code == 4002
    caught.value.message.encode("utf-8")  # the refusal itself can be sent


def test_a_token_refusal_is_a_service_error_with_no_transport_in_it(app: App) -> None:
    with pytest.raises(ServiceError) as caught:
        token_verify(token=None, app=app, room_id="r1")
    assert isinstance(caught.value, TokenError) and caught.value.code == "token_missing"
    assert CLOSE_CODES[caught.value.code] == 4001  # the socket's own table says how it closes


def test_minting_refuses_text_that_cannot_be_stored(app: App) -> None:
    for user_id, user_name in [("u\x00", "U"), ("u", "\ud800")]:
        with pytest.raises(ValueError, match="user_"):
            token_mint(app=app, room_id="r1", user_id=user_id, user_name=user_name)
