"""Room tokens: HS256 JWTs an integrator's backend mints with the app's appSign.

A token names one app, one room and one user, and may carry a role ceiling (the highest role
the user may take in that room). The socket verifies it before anything is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from rooms.errors import ServiceError
from rooms.models import App, Role
from rooms.text import clean_text

ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 3600
MAX_USER_ID = 128
MAX_USER_NAME = 64


@dataclass(frozen=True)
class TokenClaims:
    app_id: int
    room_id: str
    user_id: str
    user_name: str
    role: str | None


class TokenError(ServiceError):
    """A token (or an embed session) that cannot admit anyone. Each entry point maps its
    ``code`` to what it answers: a close code (``rooms.realtime.close_codes``), an HTTP status."""

    @property
    def close_code(self) -> int:
        """For a socket consumer that has not switched to ``close_code_for`` yet."""
        from rooms.realtime.close_codes import close_code_for

        return close_code_for(self.code)


def token_mint(
    *,
    app: App,
    room_id: str,
    user_id: str,
    user_name: str,
    role: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: float | None = None,
) -> str:
    _check_identity(user_id=user_id, user_name=user_name, role=role)
    issued = int(now if now is not None else time.time())
    payload: dict[str, object] = {
        "app_id": app.app_id,
        "room_id": room_id,
        "user_id": user_id,
        "user_name": user_name,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if role:
        payload["role"] = role
    return jwt.encode(payload, app.app_sign, algorithm=ALGORITHM)


def token_verify(*, token: str | None, app: App, room_id: str) -> TokenClaims:
    """Check signature, expiry, app and room; return the claims or raise ``TokenError``."""
    if not token:
        raise TokenError("token_missing", "A token is required to join this room.")
    try:
        payload = jwt.decode(
            token,
            app.app_sign,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "app_id", "room_id", "user_id", "user_name"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token_expired", "The token has expired; ask for a new one.") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("token_invalid", f"The token is not valid: {exc}.") from exc
    if payload["app_id"] != app.app_id:
        raise TokenError("token_wrong_app", "The token was minted for another app.")
    if payload["room_id"] != room_id:
        raise TokenError("token_wrong_room", "The token was minted for another room.")
    role = payload.get("role")
    try:
        _check_identity(user_id=payload["user_id"], user_name=payload["user_name"], role=role)
    except ValueError as exc:
        raise TokenError("token_invalid", f"The token is not valid: {exc}") from exc
    return TokenClaims(
        app_id=payload["app_id"],
        room_id=payload["room_id"],
        user_id=payload["user_id"],
        user_name=payload["user_name"],
        role=role,
    )


def _check_identity(*, user_id: object, user_name: object, role: object) -> None:
    """A ``ValueError`` saying what is wrong (``InvalidText`` for the text rules)."""
    for value, name, longest in (
        (user_id, "user_id", MAX_USER_ID),
        (user_name, "user_name", MAX_USER_NAME),
    ):
        if not isinstance(value, str) or not 0 < len(value) <= longest:
            raise ValueError(f"{name} must be a string of 1-{longest} characters.")
        clean_text(value, name=name, max_chars=longest)
    if role is not None and role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}.")
