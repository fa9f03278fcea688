"""Pages: the lobby, the room page, and its embeddable twin."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rooms.forms import RoomCreateForm
from rooms.models import App, Role, Room
from rooms.protocol import JOIN_OPTIONS
from rooms.rendering import room_parts_context
from rooms.selectors import recent_messages, room_state
from rooms.services import ServiceError, room_create
from rooms.tokens import TokenError, token_mint, token_verify


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
                created_by=_site_user_id(request),
            )
        except ServiceError as exc:
            form.add_error("room_id", exc.message)
        else:
            return redirect("room_page", room_id=room.room_id)
    context = {"rooms": _live_rooms(), "form": form}
    return render(request, "rooms/lobby.html", context, status=400)


@login_required
@require_GET
def room_page(request: HttpRequest, room_id: str) -> HttpResponse:
    """A room of the site's own app, for users signed in here: the server mints the token."""
    room = get_object_or_404(Room, app__app_id=settings.LIVEAUDIO_SITE_APP_ID, room_id=room_id)
    user_id = _site_user_id(request)
    token = token_mint(
        app=room.app,
        room_id=room.room_id,
        user_id=user_id,
        user_name=request.user.get_username()[:64],
        role=Role.HOST if room.created_by == user_id else None,
        ttl_seconds=settings.LIVEAUDIO_PAGE_TOKEN_TTL_SECONDS,
    )
    options = {"role": "host"} if room.created_by == user_id else {}
    return _render_room(
        request, room=room, user_id=user_id, token=token, embedded=False, options=options
    )


@xframe_options_exempt
@require_GET
def embed_page(request: HttpRequest, app_id: int, room_id: str) -> HttpResponse:
    """The room inside an integrator's iframe; only the app's allowed origins may frame it."""
    app = get_object_or_404(App, app_id=app_id)
    room = get_object_or_404(Room, app=app, room_id=room_id)
    token = request.GET.get("token", "")
    try:
        claims = token_verify(token=token, app=app, room_id=room.room_id)
    except TokenError as exc:
        response = HttpResponse(exc.message, status=403, content_type="text/plain")
    else:
        # The integrator's config for this user (role, takeIndexWhenJoining, ...) goes on to
        # the socket, which validates it.
        options = {k: v for k, v in request.GET.items() if k in JOIN_OPTIONS}
        response = _render_room(
            request,
            room=room,
            user_id=claims.user_id,
            token=token,
            embedded=True,
            options=options,
        )
    ancestors = " ".join(app.origins) or "'none'"
    response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response


def _render_room(
    request: HttpRequest,
    *,
    room: Room,
    user_id: str,
    token: str,
    embedded: bool,
    options: dict[str, str],
) -> HttpResponse:
    if not room.is_live:
        return render(request, "rooms/ended.html", {"room": room}, status=410)
    state = room_state(room)
    query = urlencode({"token": token, **options})
    socket_url = f"/ws/rooms/{room.app.app_id}/{room.room_id}/?{query}"
    context = {
        **room_parts_context(state),
        "messages": recent_messages(room),
        "user_id": user_id,
        "socket_url": socket_url,
        "embedded": embedded,
        "message_max": settings.LIVEAUDIO_MESSAGE_MAX_CHARS,
        "ice_servers_json": json.dumps(settings.LIVEAUDIO_ICE_SERVERS),
        "bar": {"me": None},
    }
    return render(request, "rooms/room.html", context)


def _site_user_id(request: HttpRequest) -> str:
    return f"site-{request.user.pk}"


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            login(request, form.save())
            return redirect("lobby")
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})
