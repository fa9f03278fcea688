"""Who may open a room socket, from where, as whom, with which options, until when.

Checked before anything is stored, in this order: the room exists, the Origin is allowed,
the credential (an embed session's key or a token) admits the user, the join options parse.
A refusal is a ``ServiceError`` whose code the consumer maps to a close code
(``close_codes.py``).

Origins: the server's own pages (the room page, the embed page, which only the app's allowed
origins may frame) open sockets from the server's own origin: the scheme-less ``host:port``
of the socket's ``Host`` header, or ``LIVEAUDIO_PUBLIC_ORIGINS``. A token socket may also come
from one of the app's allowed origins (an integrator's page or program); an embed session's
socket from the origin its session was made for. Any other page, even one on another port of
the same host, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from rooms import config as room_config
from rooms import services
from rooms.models import App, Room
from rooms.protocol import ProtocolError, parse_join_options
from rooms.services import JoinOptions, ServiceError
from rooms.tokens import TokenClaims, token_verify


@dataclass(frozen=True)
class Admission:
    room: Room
    claims: TokenClaims
    options: JoinOptions
    config: dict  # the embed session's, or the role's preset
    expires_at: datetime  # of the token, or of the session made from it


def admit(scope: dict[str, Any]) -> Admission:
    """Runs in a thread (it reads the database); raises ``ServiceError`` or ``ProtocolError``."""
    kwargs = scope["url_route"]["kwargs"]
    room = _room(kwargs["app_id"], kwargs["room_id"])
    query = _query(scope)
    origin = _header(scope, b"origin")
    own = own_origins(scope)
    if "session" in query:
        session = services.embed_session_verify(
            key=query["session"], app=room.app, room_id=room.room_id
        )
        _check_origin(origin, own | {session.parent_origin})
        if set(query) != {"session"}:  # the session's config holds the join options
            raise ProtocolError(
                f"Unknown join option(s): {', '.join(sorted(set(query) - {'session'}))[:200]}."
            )
        options = JoinOptions(**room_config.join_options(session.config))
        return Admission(
            room, services.session_claims(session), options, session.config, session.expires_at
        )
    _check_origin(origin, own | set(room.app.origins))
    claims = token_verify(token=query.get("token"), app=room.app, room_id=room.room_id)
    options = JoinOptions(**parse_join_options(query))
    expires_at = services.token_expires_at(query["token"])
    return Admission(room, claims, options, room_config.preset(options.role), expires_at)


def origin_known(scope: dict[str, Any]) -> bool:
    """Before the handshake: is the Origin this server's, or some app's? A page nobody
    named is turned away at the door (HTTP 403); a known one that may not join this room is
    told why after the handshake (``origin_not_allowed``)."""
    origin = _normalised(_header(scope, b"origin"))
    if not origin:
        return False
    if origin in {_normalised(o) for o in own_origins(scope)}:
        return True
    host = urlsplit(origin).hostname or ""
    if host in settings.ALLOWED_HOSTS:
        return True  # another port of this host: refused with a close code, after accept
    candidates = App.objects.filter(allowed_origins__icontains=host)
    return any(origin in {_normalised(o) for o in app.origins} for app in candidates)


def own_origins(scope: dict[str, Any]) -> set[str]:
    """The origins of pages this server serves, as seen by this socket's request."""
    return origins_of_host(_header(scope, b"host"))


def origins_of_host(host: str) -> set[str]:
    """The origins of pages this server serves, for a request naming ``host`` (its Host
    header; HTTP views use this too)."""
    configured = {o for o in getattr(settings, "LIVEAUDIO_PUBLIC_ORIGINS", []) if o}
    if host:
        hosts = [host]
    else:  # no Host header (not a browser): the configured host names, default ports
        hosts = [h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")]
    # The same host and port under either scheme is this server (behind a TLS proxy or not).
    return configured | {f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")}


def origin_in(origin: str, allowed: set[str]) -> bool:
    """Whether ``origin`` is one of ``allowed``, compared as scheme, host and port."""
    return bool(origin) and _normalised(origin) in {_normalised(a) for a in allowed if a}


def _check_origin(origin: str, allowed: set[str]) -> None:
    if not origin_in(origin, allowed):
        raise ServiceError("origin_not_allowed", "This page may not open a socket to this room.")


def _normalised(origin: str) -> str:
    parts = urlsplit(origin.strip().lower())
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _room(app_id: Any, room_id: str) -> Room:
    try:
        room = Room.objects.select_related("app").current(app__app_id=int(app_id), room_id=room_id)
    except ValueError:
        room = None
    if room is None:
        raise ServiceError("room_not_found", "There is no such room.")
    return room


def _query(scope: dict[str, Any]) -> dict[str, str]:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: values[0] for name, values in query.items()}


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""
