"""Who is asking, in the room page's own HTTP requests (media uploads, member list pages).

The page's credential is its socket's: its token (``Authorization: Bearer``) or its embed
session (``X-Liveaudio-Session``), sent in a header. No cookie is read, so another site
cannot make a browser send it (no CSRF), and a header other than the simple ones makes a
cross-origin request ask first (a CORS preflight), which this server never allows.
"""

from __future__ import annotations

from django.http import HttpRequest

from rooms.errors import ServiceError
from rooms.models import Room
from rooms.realtime.admission import origin_in, origins_of_host
from rooms.services import embed_session_verify
from rooms.tokens import TokenError, token_verify


def check_page_origin(request: HttpRequest, *, message: str) -> None:
    """This server's own pages only; checked first, so a page elsewhere learns nothing, not
    even whether the room exists. A browser sends no ``Origin`` with a same-origin GET: there
    ``Sec-Fetch-Site``, when sent, must say ``same-origin``."""
    origin = request.headers.get("Origin")
    if origin is None and request.method in ("GET", "HEAD"):
        if request.headers.get("Sec-Fetch-Site", "same-origin") == "same-origin":
            return
        raise ServiceError("origin_not_allowed", message)
    if not origin_in(origin or "", origins_of_host(request.get_host())):
        raise ServiceError("origin_not_allowed", message)


def page_credential(request: HttpRequest, room: Room) -> tuple[str, dict | None]:
    """The user the page's credential names in ``room``, and their embed session's config
    (``None``: a token's page, whose config is its role's preset)."""
    session_key = request.headers.get("X-Liveaudio-Session")
    if session_key:
        session = embed_session_verify(key=session_key, app=room.app, room_id=room.room_id)
        return session.user_id, session.config
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise TokenError("token_missing", "Send the page's token or session.")
    claims = token_verify(token=token.strip(), app=room.app, room_id=room.room_id)
    return claims.user_id, None
