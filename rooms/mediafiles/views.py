"""The page's chunked upload of a media file (docs/protocol.md, "Upload wire").

The page's own credential (its socket's token, ``Authorization: Bearer``, or its embed
session, ``X-Liveaudio-Session``), checked after the Origin (this server's own pages only),
names a member who is in the room; the services decide whether they may upload
(``rooms.services.mediafiles``). Every refusal is JSON ``{code, message}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from rooms.errors import ServiceError
from rooms.models import Member, Room
from rooms.page_auth import check_page_origin, page_credential
from rooms.services.mediafiles import (
    allowed_extensions,
    upload_cancel,
    upload_chunk,
    upload_finish,
    upload_start,
)
from rooms.text import InvalidText, loads_json
from rooms.tokens import TokenError

STATUS = {
    "bad_request": 400,
    "media_bad_extension": 400,
    "media_empty": 400,
    "media_unreadable": 400,
    "media_truncated": 400,
    "media_no_audio": 400,
    "media_too_long": 400,
    "not_permitted": 403,
    "origin_not_allowed": 403,
    "room_not_found": 404,
    "media_upload_not_found": 404,
    "media_bad_offset": 409,
    "media_upload_incomplete": 409,
    "room_ended": 410,
    "media_too_large": 413,
    "media_chunk_too_large": 413,
    "media_too_many_uploads": 429,
}
START_BODY_MAX_BYTES = 4096
Uploader = tuple[Room, Member, set[str]]


def _refusal(exc: ServiceError) -> JsonResponse:
    status = STATUS.get(exc.code, 401 if isinstance(exc, TokenError) else 400)
    return JsonResponse({"code": exc.code, "message": exc.message}, status=status)


def _guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Origin, credential, member; a ``ServiceError`` anywhere becomes its JSON refusal."""

    def guarded(request: HttpRequest, app_id: int, room_id: str, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, _uploader(request, app_id, room_id), **kwargs)
        except ServiceError as exc:
            return _refusal(exc)

    guarded.__name__ = guarded.__qualname__ = view.__name__
    guarded.__doc__ = view.__doc__
    return csrf_exempt(guarded)  # no cookie is read: the header is the credential


def _uploader(request: HttpRequest, app_id: int, room_id: str) -> Uploader:
    check_page_origin(request, message="Uploads come from this server's own pages.")
    room = Room.objects.select_related("app").current(app__app_id=app_id, room_id=room_id)
    if room is None:
        raise ServiceError("room_not_found", "There is no such room.")
    user_id, config = page_credential(request, room)
    member = Member.objects.filter(room=room, user_id=user_id, online=True, banned=False).first()
    if not room.is_live:
        raise ServiceError("room_ended", "This room has ended.")
    if member is None:
        raise ServiceError("not_permitted", "Join the room before uploading to it.")
    return room, member, allowed_extensions(config)


@require_http_methods(["POST"])
@_guarded
def upload_create(request: HttpRequest, uploader: Uploader) -> HttpResponse:
    """``POST .../uploads/`` ``{name, size}``: refused at once for a wrong name, type or size."""
    room, member, allowed = uploader
    if len(request.body) > START_BODY_MAX_BYTES:
        raise ServiceError("bad_request", "The request is too large.")
    try:
        body = loads_json(request.body or b"null", name="The body")
    except InvalidText as exc:
        raise ServiceError("bad_request", exc.message) from exc
    if not isinstance(body, dict) or set(body) - {"name", "size"}:
        raise ServiceError("bad_request", "The body must be {name, size}.")
    upload = upload_start(
        room=room, member=member, name=body.get("name"), size=body.get("size"), allowed=allowed
    )
    answer = {"uploadID": upload.upload_id, "chunkSize": settings.LIVEAUDIO_MEDIA_CHUNK_BYTES}
    return JsonResponse(answer, status=201)


@require_http_methods(["PUT", "DELETE"])
@_guarded
def upload_part(request: HttpRequest, uploader: Uploader, upload_id: str) -> HttpResponse:
    """``PUT ...?offset=N``: the next chunk. ``DELETE``: cancel, nothing kept."""
    room, member, _ = uploader
    if request.method == "DELETE":
        upload_cancel(room=room, member=member, upload_id=upload_id)
        return HttpResponse(status=204)
    offset = request.GET.get("offset", "")
    if not offset.isdigit():
        raise ServiceError("bad_request", "offset must be a byte count.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.LIVEAUDIO_MEDIA_CHUNK_BYTES:
        raise ServiceError(
            "media_chunk_too_large",
            f"A chunk may be at most {settings.LIVEAUDIO_MEDIA_CHUNK_BYTES} bytes.",
        )
    received = upload_chunk(
        room=room, member=member, upload_id=upload_id, offset=int(offset), data=request.body
    )
    return JsonResponse({"received": received})


@require_http_methods(["POST"])
@_guarded
def upload_done(request: HttpRequest, uploader: Uploader, upload_id: str) -> HttpResponse:
    """``POST .../finish/``: probed, then kept (201 and the file) or refused (4xx)."""
    room, member, _ = uploader
    media = upload_finish(room=room, member=member, upload_id=upload_id)
    return JsonResponse(media_file_json(media), status=201)


def media_file_json(media: Any) -> dict[str, Any]:
    """A kept file as the SDK's pickers resolve it."""
    return {
        "mediaID": media.media_id,
        "name": media.name,
        "size": media.size,
        "extension": media.extension,
        "type": media.kind,
        "totalDuration": media.duration_ms,
        "info": media.info,
    }
