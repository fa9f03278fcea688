"""Embed sessions: an embedded user's checked join, named by a key in the iframe's URL.

The embed SDK's first request (``POST /embed/sessions/``) lands here with a token (or, for a
test-mode app, the appSign) and the integrator's config. What passes becomes an
``EmbedSession``; the embed page and its socket then name only the session's key, so neither
the token nor the config travels in a URL. A session ends when its token does.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.db import transaction
from django.utils import timezone

from rooms import config as room_config
from rooms.models import App, EmbedSession, Role, Room
from rooms.services.common import ServiceError
from rooms.services.rooms import is_room_id, room_create
from rooms.text import InvalidText, check_json, clean_text
from rooms.tokens import (
    DEFAULT_TTL_SECONDS,
    MAX_USER_ID,
    MAX_USER_NAME,
    TokenClaims,
    TokenError,
    token_verify,
)


class EmbedRefused(ServiceError):
    """A session that cannot be made; ``fields`` (``[{field, message}]``) names every field
    that was wrong. The view maps ``code`` to an HTTP status."""

    def __init__(self, code: str, message: str, fields: list[dict] | None = None) -> None:
        super().__init__(code, message)
        self.fields = fields


@dataclass(frozen=True)
class SessionRequest:
    """What the embed SDK sends, already type-checked by the view."""

    app: App
    room_id: str
    user_id: str
    user_name: str
    token: str | None
    app_sign: str | None
    config: Any
    parent_origin: str


@dataclass(frozen=True)
class _Identity:
    user_id: str
    user_name: str
    role_ceiling: str  # "" = the token names none (up to speaker)
    expires_at: datetime


def embed_session_create(*, request: SessionRequest) -> EmbedSession:
    """Check the credentials, then the config, then the room (made for a host); store the
    session. Nothing is stored when any check fails."""
    identity = _identity(request)
    try:
        check_json(request.config, name="config", max_chars=room_config.MAX_CONFIG_BYTES)
        config = room_config.validate_config(request.config)
        config = room_config.without_unnamed_room_options(config, request.config)
    except InvalidText as exc:
        fields = [{"field": "config", "message": exc.message}]
        raise EmbedRefused("bad_config", exc.message, fields) from exc
    except room_config.ConfigError as exc:
        raise EmbedRefused("bad_config", exc.message, exc.fields) from exc
    room = _room_for(request, config, identity)
    _fit_layout(config, room)
    EmbedSession.objects.filter(expires_at__lt=timezone.now()).delete()
    return EmbedSession.objects.create(
        key=secrets.token_urlsafe(32),
        app=request.app,
        room_id=room.room_id,
        user_id=identity.user_id,
        user_name=identity.user_name,
        role_ceiling=identity.role_ceiling,
        config=config,
        parent_origin=request.parent_origin,
        expires_at=identity.expires_at,
    )


def _identity(request: SessionRequest) -> _Identity:
    if request.token and request.app_sign:
        raise EmbedRefused("bad_request", "Pass either a token or an appSign, not both.")
    if request.token:
        return _identity_from_token(request)
    if request.app_sign:
        return _identity_from_app_sign(request)
    raise EmbedRefused("token_missing", "A token (or a test app's appSign) is required.")


def _identity_from_token(request: SessionRequest) -> _Identity:
    token = request.token or ""
    claims = token_verify(token=token, app=request.app, room_id=request.room_id)
    if claims.user_id != request.user_id:
        raise EmbedRefused("token_wrong_user", "The token was minted for another user.")
    return _Identity(
        user_id=claims.user_id,
        user_name=claims.user_name,
        role_ceiling=claims.role or "",
        expires_at=token_expires_at(token),  # the session ends with the token
    )


def _identity_from_app_sign(request: SessionRequest) -> _Identity:
    """Like the seed's widget, a test app's browser may hold the appSign; production never."""
    app = request.app
    if not app.test_mode:
        raise EmbedRefused(
            "app_sign_refused",
            "This app is not in test mode: mint a token on your server instead.",
        )
    if not hmac.compare_digest((request.app_sign or "").encode(), app.app_sign.encode()):
        raise EmbedRefused("app_sign_invalid", "The appSign is not this app's.")
    return _Identity(
        user_id=request.user_id,
        user_name=request.user_name,
        role_ceiling=Role.HOST,
        expires_at=timezone.now() + timedelta(seconds=DEFAULT_TTL_SECONDS),
    )


def _room_for(request: SessionRequest, config: dict, identity: _Identity) -> Room:
    """The room, made now when a host (whose token allows it) opens one that does not exist,
    or starts one again that ended."""
    room = Room.objects.current(app=request.app, room_id=request.room_id)
    if room is None or not room.is_live:
        if config["role"] != Role.HOST or identity.role_ceiling != Role.HOST:
            if room is not None:
                raise EmbedRefused("room_ended", f"The room {request.room_id!r} has ended.")
            raise EmbedRefused("room_not_found", f"There is no room {request.room_id!r}.")
        try:
            with transaction.atomic():
                room = room_create(
                    app=request.app,
                    room_id=request.room_id,
                    created_by=identity.user_id,
                    seat_rows=room_config.seat_rows(config),
                    host_indexes=config["seat"]["hostIndexes"],
                )
        except ServiceError as exc:
            if exc.code != "room_exists":
                raise
            room = Room.objects.get(  # a racing host made it
                app=request.app, room_id=request.room_id, ended_at__isnull=True
            )
    return room


def _fit_layout(config: dict, room: Room) -> None:
    """A room keeps the layout it was made with: the config says what the page shows."""
    rows = config["seat"]["layout"]["rowConfigs"]
    config["seat"]["layout"]["rowConfigs"] = [
        {**(rows[i] if i < len(rows) else room_config.ROW_DEFAULTS), "count": count}
        for i, count in enumerate(room.seat_rows)
    ]
    config["seat"]["hostIndexes"] = list(room.host_indexes)


def check_identity_fields(*, user_id: Any, user_name: Any) -> list[dict[str, str]]:
    """The body's userID / userName, as a token would carry them."""
    fields = []
    for value, name, longest in (
        (user_id, "userID", MAX_USER_ID),
        (user_name, "userName", MAX_USER_NAME),
    ):
        if not isinstance(value, str) or not 0 < len(value) <= longest:
            fields.append({"field": name, "message": f"must be 1-{longest} characters"})
            continue
        try:
            clean_text(value, name=name, max_chars=longest)
        except InvalidText as exc:
            fields.append({"field": name, "message": exc.message})
    return fields


def check_room_id(room_id: Any) -> list[dict[str, str]]:
    if not is_room_id(room_id):
        return [{"field": "roomID", "message": "must be 1-64 letters, digits, '_', '.' or '-'"}]
    return []


# --- using a session ----------------------------------------------------------------------


def embed_session_verify(*, key: str | None, app: App, room_id: str) -> EmbedSession:
    """The session named in a page's or a socket's URL; refusals read like a token's."""
    session = (
        EmbedSession.objects.filter(key=key).select_related("app").first()
        if _is_session_key(key)
        else None
    )
    if session is None:
        raise TokenError("token_invalid", "This embed session is not valid.")
    if session.expires_at <= timezone.now():
        raise TokenError("token_expired", "This embed session has expired; start again.")
    if session.app_id != app.pk:
        raise TokenError("token_wrong_app", "This embed session is for another app.")
    if session.room_id != room_id:
        raise TokenError("token_wrong_room", "This embed session is for another room.")
    return session


def _is_session_key(key: object) -> bool:
    """Worth looking up: a key is URL-safe base64 (``secrets.token_urlsafe``), and a NUL
    cannot even be queried on PostgreSQL."""
    return isinstance(key, str) and 0 < len(key) <= 64 and key.isascii() and key.isprintable()


def session_claims(session: EmbedSession) -> TokenClaims:
    return TokenClaims(
        app_id=session.app.app_id,
        room_id=session.room_id,
        user_id=session.user_id,
        user_name=session.user_name,
        role=session.role_ceiling or None,
    )


def token_expires_at(token: str) -> datetime:
    """The expiry of a token that ``token_verify`` already accepted."""
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    return datetime.fromtimestamp(exp, tz=UTC)
