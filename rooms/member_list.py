"""The member list past its first page, over HTTP: ``GET /members/<appID>/<roomID>/``.

The room page shows the first 60 members (seated first) in the part every socket shares;
whoever wants more asks here, with the page's own credential (``rooms.page_auth``), and gets
the next rows as HTML for their own list: a socket's updates never carry them, so a join still
costs every socket the same bytes. ``?after=<cursor>`` continues a list, ``?q=<text>`` searches
names. Who may read, and the order, are the selector's (``rooms.selectors.member_page``).
Refusals are JSON ``{code, message}``; the page shows the message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_safe

from rooms.errors import ServiceError
from rooms.models import Room
from rooms.page_auth import check_page_origin, page_credential
from rooms.rendering import DEFAULT_PARTS_VIEW, member_page_url, parts_view
from rooms.selectors import MEMBER_QUERY_MAX_CHARS, MemberCursor, MemberPage, member_page
from rooms.text import InvalidText, clean_text
from rooms.tokens import TokenError

PAGES_PER_MINUTE = 120  # per member of a room; LIVEAUDIO_MEMBER_PAGES_PER_MINUTE overrides
PARAMS = {"q", "after"}
CURSOR_MAX_CHARS = 9 + 1 + 128  # "listening" ":" a user ID
STATUS = {
    "bad_request": 400,
    "bad_cursor": 400,
    "not_permitted": 403,
    "origin_not_allowed": 403,
    "room_not_found": 404,
    "room_ended": 410,
    "rate_limited": 429,
}


@require_safe
def member_page_view(request: HttpRequest, app_id: int, room_id: str) -> HttpResponse:
    """One page of the list: rows with the same host tools as the first page's."""
    try:
        room, reader_id, config = _reader(request, app_id, room_id)
        _check_rate(room, reader_id)
        query, after = _params(request)
        view = parts_view(config) if config else DEFAULT_PARTS_VIEW
        page = member_page(
            room=room,
            reader_id=reader_id,
            after=after,
            query=query or "",
            hidden=view["hiddenUsers"],
        )
    except ServiceError as exc:
        return _refusal(exc)
    if query == "" and after is None:
        page = MemberPage(members=[], next=None)  # the search box emptied: no search, no rows
    context = _context(room, page, query or "", after, view)
    html = render_to_string("rooms/partials/member_page.html", context)
    response = HttpResponse(html)
    response["Cache-Control"] = "private, no-store"
    return response


def _reader(request: HttpRequest, app_id: int, room_id: str) -> tuple[Room, str, dict | None]:
    """Origin first, then the room, then the credential: who asks, in this room."""
    check_page_origin(request, message="The member list is read from this server's own pages.")
    try:
        clean_text(room_id, name="roomID", max_chars=128)
    except InvalidText as exc:
        raise ServiceError("room_not_found", "There is no such room.") from exc
    room = Room.objects.select_related("app").current(app__app_id=app_id, room_id=room_id)
    if room is None:
        raise ServiceError("room_not_found", "There is no such room.")
    user_id, config = page_credential(request, room)
    return room, user_id, config


def _check_rate(room: Room, user_id: str) -> None:
    """A fixed one-minute window per member of a room, in the process's cache."""
    limit = getattr(settings, "LIVEAUDIO_MEMBER_PAGES_PER_MINUTE", PAGES_PER_MINUTE)
    key = f"member-pages:{room.pk}:{user_id}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=60)
        count = 1
    if count > limit:
        raise ServiceError("rate_limited", "Too many member list requests; wait a minute.")


def _params(request: HttpRequest) -> tuple[str | None, MemberCursor | None]:
    """``q`` (``None``: not sent) and ``after``, from a query string read strictly: Django's
    own reading turns bytes that are not UTF-8 into U+FFFD, which would search for it."""
    try:
        pairs = parse_qsl(
            request.META.get("QUERY_STRING", ""),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=len(PARAMS),
        )
    except UnicodeDecodeError as exc:
        raise ServiceError("bad_request", "The query string is not valid UTF-8.") from exc
    except ValueError as exc:
        raise ServiceError("bad_request", "Send at most q and after.") from exc
    params = dict(pairs)
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise ServiceError("bad_request", f"{unknown[0]} is not a parameter of this request.")
    if len(params) < len(pairs):
        raise ServiceError("bad_request", "Send each parameter once.")
    try:
        query = params.get("q")
        if query is not None:
            query = clean_text(query, name="q", max_chars=MEMBER_QUERY_MAX_CHARS).strip()
        after = clean_text(params.get("after", ""), name="after", max_chars=CURSOR_MAX_CHARS)
    except InvalidText as exc:
        raise ServiceError("bad_request", exc.message) from exc
    return query, MemberCursor.parse(after) if after else None


def _context(
    room: Room, page: MemberPage, query: str, after: MemberCursor | None, view: dict[str, Any]
) -> dict[str, Any]:
    next_url = None
    if page.next is not None:
        next_url = member_page_url(room.app.app_id, room.room_id, after=page.next, query=query)
    return {
        "members": page.members,
        "next_url": next_url,
        "searched": query if after is None else "",  # a search's first page names it
        "text": view["innerText"],
        "show_mic_state": view["showMicrophoneState"],
    }


def _refusal(exc: ServiceError) -> JsonResponse:
    status = STATUS.get(exc.code, 401 if isinstance(exc, TokenError) else 400)
    response = JsonResponse({"code": exc.code, "message": exc.message}, status=status)
    if status == 429:
        response["Retry-After"] = "60"
    return response
