"""Pages: the lobby, the room page, its embeddable twin, and the embed SDK's session request."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from csp.constants import NONE
from csp.decorators import csp_replace, csp_update
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.cache import cache
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from rooms import config as room_config
from rooms.forms import RoomCreateForm
from rooms.models import App, EmbedSession, Role, Room
from rooms.protocol import JOIN_OPTIONS
from rooms.rendering import page_context, parts_view, room_parts_context
from rooms.selectors import recent_messages, room_state
from rooms.services import (
    EmbedRefused,
    ServiceError,
    SessionRequest,
    embed_session_create,
    embed_session_verify,
    room_create,
)
from rooms.services.embed import check_identity_fields, check_room_id
from rooms.text import InvalidText, clean_text, loads_json
from rooms.tokens import TokenError, token_mint, token_verify

# The session request: a config (16 KiB at most) and a few names.
SESSION_BODY_MAX_BYTES = 32 * 1024
SESSION_FIELDS = {"appID", "roomID", "userID", "userName", "token", "appSign", "config"}
ORIGIN_MAX_CHARS = 200  # EmbedSession.parent_origin
SESSIONS_PER_MINUTE = 60  # per client address; LIVEAUDIO_EMBED_SESSIONS_PER_MINUTE overrides
# The session request's refusals, by code: a token's or a service's refusal keeps its code.
SESSION_STATUS = {
    "bad_request": 400,
    "bad_config": 400,
    "token_missing": 401,
    "token_invalid": 401,
    "token_expired": 401,
    "token_wrong_app": 401,
    "token_wrong_room": 401,
    "token_wrong_user": 401,
    "app_sign_invalid": 401,
    "app_sign_refused": 403,
    "origin_not_allowed": 403,
    "app_not_found": 404,
    "room_not_found": 404,
    "room_ended": 410,
    "body_too_large": 413,
    "rate_limited": 429,
}
SESSION_STATUS_DEFAULT = 400  # e.g. a layout room_create refuses


def site_app() -> App:
    return App.objects.get(app_id=settings.LIVEAUDIO_SITE_APP_ID)


@require_GET
def lobby(request: HttpRequest) -> HttpResponse:
    return render(request, "rooms/lobby.html", {"rooms": _live_rooms(), "form": RoomCreateForm()})


def _live_rooms() -> list[Room]:
    return list(
        Room.objects.filter(app__app_id=settings.LIVEAUDIO_SITE_APP_ID, ended_at__isnull=True)
        .annotate(online_count=Count("members", filter=Q(members__online=True)))
        .order_by("-created_at")
    )


@login_required
@require_POST
def room_create_view(request: HttpRequest) -> HttpResponse:
    form = RoomCreateForm(request.POST)
    if form.is_valid():
        try:
            room = room_create(
                app=site_app(),
                room_id=form.cleaned_data["room_id"],
                title=form.cleaned_data["title"],
                topic=form.cleaned_data.get("topic", ""),
                created_by=_site_user_id(request),
            )
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            return redirect("room_page", room_id=room.room_id)
    context = {"rooms": _live_rooms(), "form": form}
    return render(request, "rooms/lobby.html", context, status=400)


@login_required
@require_safe  # HEAD too: a page waiting for a restarted server asks with HEAD
def room_page(request: HttpRequest, room_id: str) -> HttpResponse:
    """A room of the site's own app, for users signed in here: the server mints the token."""
    room = Room.objects.current(app__app_id=settings.LIVEAUDIO_SITE_APP_ID, room_id=room_id)
    if room is None:
        raise Http404("There is no such room.")
    user_id = _site_user_id(request)
    is_host = room.created_by == user_id
    token = token_mint(
        app=room.app,
        room_id=room.room_id,
        user_id=user_id,
        user_name=request.user.get_username()[:64],
        role=Role.HOST if is_host else None,
        ttl_seconds=settings.LIVEAUDIO_PAGE_TOKEN_TTL_SECONDS,
    )
    config = room_config.preset(Role.HOST if is_host else Role.AUDIENCE)
    return _render_room(
        request,
        room=room,
        user_id=user_id,
        socket_query={"token": token, **room_config.join_query(config)},
        config=config,
    )


@xframe_options_exempt
@require_safe  # HEAD too: a page waiting for a restarted server asks with HEAD
def embed_page(request: HttpRequest, app_id: int, room_id: str) -> HttpResponse:
    """The room inside an integrator's iframe; only the app's allowed origins may frame it.

    ``?session=<key>`` (made by ``POST /embed/sessions/``) carries the user and the config;
    ``?token=<JWT>&role=...`` (join options in the query) is the older, direct way in.
    """
    app = get_object_or_404(App, app_id=app_id)
    room = Room.objects.current(app=app, room_id=room_id)
    if room is None:
        raise Http404("There is no such room.")
    try:
        if "session" in request.GET:
            response = _embed_session_page(request, room, request.GET["session"])
        else:
            response = _embed_token_page(request, room, request.GET.get("token", ""))
    except TokenError as exc:
        response = HttpResponse(exc.message, status=403, content_type="text/plain")
    # The site's policy (settings.CONTENT_SECURITY_POLICY), framed by the app's origins only.
    return _amend_policy(request, response, replace={"frame-ancestors": app.origins or [NONE]})


def _embed_session_page(request: HttpRequest, room: Room, key: str) -> HttpResponse:
    session = embed_session_verify(key=key, app=room.app, room_id=room.room_id)
    return _render_room(
        request,
        room=room,
        user_id=session.user_id,
        socket_query={"session": session.key},
        config=session.config,
        parent_origin=session.parent_origin,
    )


def _embed_token_page(request: HttpRequest, room: Room, token: str) -> HttpResponse:
    claims = token_verify(token=token, app=room.app, room_id=room.room_id)
    # The join options (role, takeIndexWhenJoining, ...) go on to the socket, which checks them.
    options: dict[str, str] = {k: request.GET[k] for k in request.GET if k in JOIN_OPTIONS}
    role = options.get("role", "")
    config = room_config.preset(role if role in room_config.ROLES else Role.AUDIENCE)
    return _render_room(
        request,
        room=room,
        user_id=claims.user_id,
        socket_query={"token": token, **options},
        config=config,
        parent_origin="",
    )


def _render_room(
    request: HttpRequest,
    *,
    room: Room,
    user_id: str,
    socket_query: dict[str, str],
    config: dict[str, Any],
    parent_origin: str | None = None,
) -> HttpResponse:
    """``parent_origin`` None: the site's own page; a string: embedded (maybe no parent known)."""
    if not room.is_live:
        context = {
            "room": room,
            "site": parent_origin is None,  # the site's own page: its lobby is the way on
            # Its host may start it again under the same ID (a new session; issue 13).
            "can_restart": parent_origin is None and room.created_by == user_id,
        }
        return render(request, "rooms/ended.html", context, status=410)
    state = room_state(room)
    socket_url = f"/ws/rooms/{room.app.app_id}/{room.room_id}/?{urlencode(socket_query)}"
    context = {
        **room_parts_context(state, parts=parts_view(config)),
        **page_context(config, room=room),
        "messages": recent_messages(room),
        "user_id": user_id,
        "socket_url": socket_url,
        "embedded": parent_origin is not None,
        "parent_origin": parent_origin or "",
        # What "Share link" copies (the site's own page: an embedded room's is the host page's)
        "share_url": request.build_absolute_uri(reverse("room_page", args=[room.room_id])),
        "message_max": settings.LIVEAUDIO_MESSAGE_MAX_CHARS,
        "ice_servers_json": json.dumps(settings.LIVEAUDIO_ICE_SERVERS),
        "bar": {"me": None, "text": config["innerText"]},
    }
    response = render(request, "rooms/room.html", context)
    images = _image_sources(config)
    return _amend_policy(request, response, update={"img-src": images}) if images else response


_PLAIN_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _image_sources(config: dict[str, Any]) -> list[str]:
    """CSP sources for the config's avatar and background images: their origins, or just
    the scheme when the host is not a plain name and port (``{userID}`` in it, say)."""
    sources = set()
    for url in (config["seat"]["avatarURL"], config["background"]["imageURL"]):
        if url:
            parts = urlsplit(url)
            plain = _PLAIN_HOST.match(parts.netloc)
            sources.add(f"{parts.scheme}://{parts.netloc.lower()}" if plain else f"{parts.scheme}:")
    return sorted(sources)


def _amend_policy(
    request: HttpRequest,
    response: HttpResponse,
    *,
    update: dict[str, list[str]] | None = None,
    replace: dict[str, list[str]] | None = None,
) -> HttpResponse:
    """django-csp's per-view decorators, for directives known only once the page is made."""

    def respond(request: HttpRequest) -> HttpResponseBase:
        return response

    page: Callable[[HttpRequest], HttpResponseBase] = respond
    if update:
        page = csp_update(update)(page)
    if replace:
        page = csp_replace(replace)(page)
    amended = page(request)
    assert isinstance(amended, HttpResponse)
    return amended


# --- the embed SDK's first request ----------------------------------------------------------


@csrf_exempt  # no cookies are read: the token or appSign is the credential
@require_http_methods(["POST", "OPTIONS"])
def embed_session_create_view(request: HttpRequest) -> HttpResponse:
    """``POST /embed/sessions/``: check who, where from and the config; answer the iframe URL.

    CORS answers only an origin the app allows (a preflight: any app's allowed origin).
    """
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        return _preflight(origin)
    try:
        body = _session_body(request)
        app = App.objects.filter(app_id=body["appID"]).first()
        if app is None:
            raise EmbedRefused("app_not_found", f"There is no app {body['appID']}.")
        if len(origin) > ORIGIN_MAX_CHARS or origin not in app.origins:
            raise EmbedRefused(
                "origin_not_allowed", f"{origin or 'This page'} may not embed this app."
            )
        _check_rate(request)
        session = embed_session_create(
            request=SessionRequest(
                app=app,
                room_id=body["roomID"],
                user_id=body["userID"],
                user_name=body["userName"],
                token=body.get("token"),
                app_sign=body.get("appSign"),
                config=body.get("config"),
                parent_origin=origin,
            )
        )
    except ServiceError as exc:
        return _cors(_refusal(exc), origin)
    return _cors(JsonResponse(_session_answer(request, session), status=201), origin)


def _session_body(request: HttpRequest) -> dict[str, Any]:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > SESSION_BODY_MAX_BYTES:
        raise EmbedRefused(
            "body_too_large", f"The request may be at most {SESSION_BODY_MAX_BYTES} bytes."
        )
    try:
        body = loads_json(request.body or b"null", name="The body")
    except InvalidText as exc:
        raise EmbedRefused("bad_request", exc.message) from exc
    if not isinstance(body, dict):
        raise EmbedRefused("bad_request", "The body must be a JSON object.")
    fields = [
        {"field": name, "message": "is not a field of this request"}
        for name in sorted(set(body) - SESSION_FIELDS)
    ]
    app_id = body.get("appID")
    if isinstance(app_id, bool) or not isinstance(app_id, int) or app_id < 0:
        fields.append({"field": "appID", "message": "must be an integer"})
    fields += check_room_id(body.get("roomID"))
    fields += check_identity_fields(user_id=body.get("userID"), user_name=body.get("userName"))
    for name, longest in (("token", 4096), ("appSign", 64)):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            fields.append({"field": name, "message": f"must be a string of at most {longest}"})
        elif value is not None and not _is_clean(value, name=name, max_chars=longest):
            fields.append({"field": name, "message": "must be printable text"})
    if fields:
        raise EmbedRefused("bad_request", "Some fields of the request are wrong.", fields)
    return body


def _check_rate(request: HttpRequest) -> None:
    """A fixed one-minute window per client address, in the process's cache."""
    limit = getattr(settings, "LIVEAUDIO_EMBED_SESSIONS_PER_MINUTE", SESSIONS_PER_MINUTE)
    key = f"embed-sessions:{request.META.get('REMOTE_ADDR', '')}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=60)
        count = 1
    if count > limit:
        raise EmbedRefused("rate_limited", "Too many sessions; try again in a minute.")


def _session_answer(request: HttpRequest, session: EmbedSession) -> dict[str, Any]:
    path = f"/embed/{session.app.app_id}/{session.room_id}/?{urlencode({'session': session.key})}"
    return {
        "session": session.key,
        "url": request.build_absolute_uri(path),
        "config": session.config,
        "expiresAt": int(session.expires_at.timestamp() * 1000),
    }


def _is_clean(value: str, *, name: str, max_chars: int) -> bool:
    try:
        clean_text(value, name=name, max_chars=max_chars)
    except InvalidText:
        return False
    return True


def _refusal(exc: ServiceError) -> JsonResponse:
    data: dict[str, Any] = {"code": exc.code, "message": exc.message}
    fields = getattr(exc, "fields", None)  # EmbedRefused's
    if fields:
        data["fields"] = fields
    status = SESSION_STATUS.get(exc.code, SESSION_STATUS_DEFAULT)
    response = JsonResponse(data, status=status)
    if status == 429:
        response["Retry-After"] = "60"
    return response


def _preflight(origin: str) -> HttpResponse:
    if not _any_app_allows(origin):
        return JsonResponse(
            {"code": "origin_not_allowed", "message": "This origin may not embed any app."},
            status=403,
        )
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "600"
    return _cors(response, origin)


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    """Echo the origin only when some app allows it; the browser then lets the page read the
    answer (refusals too, so embed.js can say why)."""
    response["Vary"] = "Origin"
    if origin and _any_app_allows(origin):
        response["Access-Control-Allow-Origin"] = origin
    return response


def _any_app_allows(origin: str) -> bool:
    if not origin or "\n" in origin:
        return False
    candidates = App.objects.filter(allowed_origins__contains=origin)
    return any(origin in app.origins for app in candidates)


def _site_user_id(request: HttpRequest) -> str:
    return f"site-{request.user.pk}"


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form: UserCreationForm = UserCreationForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            login(request, form.save())
            return redirect("lobby")
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})
