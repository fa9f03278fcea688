"""The endpoints. Thin, like the socket consumer: authenticate (``AppSignAuth``), validate
(``schemas``), call a service, answer. Every write goes through ``rooms.services``, so people
in the room see its effect live, as if a host had done it."""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any, Literal, cast

from django.db import IntegrityError
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import register_converter
from ninja import Path, Query, Router, Status
from pydantic import BaseModel

from rooms import services
from rooms.api import idempotency
from rooms.api.errors import ApiError
from rooms.api.schemas import (
    MAX_TTL_SECONDS,
    ROOM_ID_PATTERN,
    CommandIn,
    CommandOut,
    ErrorOut,
    MediaFileOut,
    MediaInfo,
    MediaOut,
    MediaPlayIn,
    MemberFilter,
    MemberList,
    MemberOut,
    MessageIn,
    MessageOut,
    PropertiesDeleteIn,
    PropertiesIn,
    PropertiesOut,
    RoomFilter,
    RoomIn,
    RoomList,
    RoomOut,
    SeatList,
    SeatOut,
    TokenIn,
    TokenOut,
    checked_text,
)
from rooms.models import App, Member, Room, RoomProperty
from rooms.selectors import MemberState, media_state, message_state, room_state
from rooms.services.common import member_by_user_id
from rooms.services.mediafiles import media_source
from rooms.text import MULTILINE_CHAR
from rooms.tokens import MAX_USER_ID, token_mint

router = Router()
RoleName = Literal["host", "cohost", "speaker", "audience"]  # a stored Member.role


class AnyTextConverter:
    """A user ID is any string of 1-128 characters: slashes (sent as %2F, decoded before
    routing) and line breaks included, which Django's own ``str`` and ``path`` refuse."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyTextConverter, "anytext")

RoomPath = Annotated[
    str,
    Path(
        pattern=ROOM_ID_PATTERN,
        description="The room's ID.",
        example="friday-jam",
    ),
]
UserPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_USER_ID,
        pattern=rf"^{MULTILINE_CHAR}+$",
        description="The member's user ID, percent-encoded (a slash as %2F).",
        example="u-42",
    ),
    # Line breaks allowed: the ID of a member who joined before tokens refused them.
    checked_text(name="userID", max_chars=MAX_USER_ID, multiline=True),
]
# Every endpoint may refuse a malformed request, a missing / wrong appSign, or too many.
REFUSED = {400: ErrorOut, 401: ErrorOut, 429: ErrorOut}
# Every POST takes an Idempotency-Key (rooms.api.idempotency) and may refuse a reused one.
KEYED = {422: ErrorOut}
IDEMPOTENCY_KEY = {
    "parameters": [
        {
            "in": "header",
            "name": idempotency.HEADER,
            "required": False,
            "description": "Do this POST at most once: a retry with the same key (and body) "
            "within 24 h gets the first answer again.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": idempotency.MAX_KEY_CHARS,
                "pattern": r"^[\x20-\x7e]+$",
            },
        }
    ]
}
IN_A_ROOM = {**REFUSED, 404: ErrorOut}
CHANGING_A_ROOM = {**IN_A_ROOM, 409: ErrorOut}


def _app(request: HttpRequest) -> App:
    return request.auth  # type: ignore[attr-defined]  # set by AppSignAuth


def _room(request: HttpRequest, room_id: str) -> Room:
    room = Room.objects.select_related("app").current(app=_app(request), room_id=room_id)
    if room is None:
        raise ApiError(404, "room_not_found", f"There is no room {room_id!r} in this app.")
    return room


def _live_room(request: HttpRequest, room_id: str) -> Room:
    room = _room(request, room_id)
    if not room.is_live:
        raise ApiError(409, "room_ended", "This room has ended.")
    return room


def _only_query(request: HttpRequest, model: type[BaseModel]) -> None:
    """An unknown query parameter is refused, not ignored (a typo would otherwise go unseen)."""
    unknown = sorted(set(request.GET) - set(model.model_fields))
    if unknown:
        raise ApiError(
            400, "invalid_request", f"Unknown query parameter(s): {', '.join(map(repr, unknown))}."
        )


def _room_out(room: Room, online_count: int | None = None) -> RoomOut:
    if online_count is None:
        online_count = room.members.filter(online=True).count()
    return RoomOut(
        roomID=room.room_id,
        title=room.title,
        live=room.is_live,
        createdBy=room.created_by,
        createdAt=room.created_at,
        endedAt=room.ended_at,
        seatCount=room.seat_count,
        onlineCount=online_count,
    )


def _member_out(member: MemberState) -> MemberOut:
    return MemberOut(
        userID=member.user_id,
        userName=member.user_name,
        role=cast(RoleName, member.role),
        online=member.online,
        micOn=member.mic_on,
        seatIndex=member.seat_index,
    )


def _stored_member_out(member: Member) -> MemberOut:
    """A member after a kick or a ban: off any seat, offline."""
    member.refresh_from_db()
    return MemberOut(
        userID=member.user_id,
        userName=member.user_name,
        role=cast(RoleName, member.role),
        online=member.online,
        micOn=member.mic_on,
        seatIndex=None,
        banned=member.banned,
    )


# --- tokens -----------------------------------------------------------------------------------


@router.post(
    "/tokens",
    response={200: TokenOut, **REFUSED, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Mint a room token",
    operation_id="token_create",
    tags=["tokens"],
)
def token_create(request: HttpRequest, payload: TokenIn) -> TokenOut:
    """Mint a room token for one user of one room (the room need not exist yet).

    Give it to that user's browser: the embed SDK joins with it. ``role`` is the highest role
    the token allows; without one the user may be up to a speaker."""
    now = int(time.time())
    ttl = min(payload.ttlSeconds, MAX_TTL_SECONDS)
    try:
        token = token_mint(
            app=_app(request),
            room_id=payload.roomID,
            user_id=payload.userID,
            user_name=payload.userName,
            role=payload.role,
            ttl_seconds=ttl,
            now=now,
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    return TokenOut(token=token, expiresAt=now + ttl)


# --- rooms ------------------------------------------------------------------------------------


@router.get(
    "/rooms",
    response={200: RoomList, **REFUSED},
    summary="List rooms",
    operation_id="room_list",
    tags=["rooms"],
)
def room_list(request: HttpRequest, filters: Query[RoomFilter]) -> RoomList:
    """This app's rooms, newest first."""
    _only_query(request, RoomFilter)
    rooms = Room.objects.filter(app=_app(request)).annotate(
        online_count=Count("members", filter=Q(members__online=True))
    )
    if filters.status != "all":
        rooms = rooms.filter(ended_at__isnull=(filters.status == "live"))
    start, stop = filters.offset, filters.offset + filters.limit
    page = rooms.order_by("-created_at", "-pk")[start:stop]
    # (the stubs lose the annotation through Room's own QuerySet class)
    counts = [(room, room.online_count) for room in page]  # type: ignore[attr-defined]
    return RoomList(rooms=[_room_out(room, count) for room, count in counts])


@router.post(
    "/rooms",
    response={201: RoomOut, **REFUSED, 409: ErrorOut, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Create a room",
    operation_id="room_create",
    tags=["rooms"],
)
def room_create(request: HttpRequest, payload: RoomIn) -> Status:
    """Create a room (default layout: two rows of four seats, seat 0 for the host).
    409 ``room_exists`` if the app already has a room with this ID, live or ended."""
    try:
        room = services.room_create(app=_app(request), room_id=payload.roomID, title=payload.title)
    except IntegrityError as exc:  # created by someone else at the same instant
        raise ApiError(409, "room_exists", f"A room {payload.roomID!r} already exists.") from exc
    return Status(201, _room_out(room, 0))


@router.get(
    "/rooms/{roomID}",
    response={200: RoomOut, **IN_A_ROOM},
    summary="Read a room",
    operation_id="room_get",
    tags=["rooms"],
)
def room_get(request: HttpRequest, roomID: RoomPath) -> RoomOut:
    return _room_out(_room(request, roomID))


@router.post(
    "/rooms/{roomID}/end",
    response={200: RoomOut, **IN_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="End a room",
    operation_id="room_end",
    tags=["rooms"],
)
def room_end(request: HttpRequest, roomID: RoomPath) -> RoomOut:
    """End the room for everyone in it (they are told, then disconnected). Ending an ended
    room changes nothing."""
    room = _room(request, roomID)
    services.room_end(room=room, reason="roomEnded")
    room.refresh_from_db()
    return _room_out(room)


# --- members ----------------------------------------------------------------------------------


@router.get(
    "/rooms/{roomID}/members",
    response={200: MemberList, **IN_A_ROOM},
    summary="List members",
    operation_id="member_list",
    tags=["members"],
)
def member_list(request: HttpRequest, roomID: RoomPath, filters: Query[MemberFilter]) -> MemberList:
    """Who is in the room now (and who keeps a seat while reconnecting), or who is banned."""
    _only_query(request, MemberFilter)
    room = _room(request, roomID)
    if filters.banned:
        rows = Member.objects.filter(room=room, banned=True).order_by("user_id")
        return MemberList(members=[_stored_member_out(m) for m in rows])
    return MemberList(members=[_member_out(m) for m in room_state(room).members])


@router.post(
    "/rooms/{roomID}/members/{anytext:userID}/kick",
    response={200: MemberOut, **CHANGING_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Kick a member",
    operation_id="member_kick",
    tags=["members"],
)
def member_kick(request: HttpRequest, roomID: RoomPath, userID: UserPath) -> MemberOut:
    """Remove a user from the room now (their socket closes with 4010 ``kickOut``); they may
    join again with a token."""
    room = _live_room(request, roomID)
    member = member_by_user_id(room, userID)
    services.member_kick(member=member)
    return _stored_member_out(member)


@router.post(
    "/rooms/{roomID}/members/{anytext:userID}/ban",
    response={200: MemberOut, **CHANGING_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Ban a member",
    operation_id="member_ban",
    tags=["members"],
)
def member_ban(request: HttpRequest, roomID: RoomPath, userID: UserPath) -> MemberOut:
    """Remove a user who is or was in the room and refuse their every later join."""
    room = _live_room(request, roomID)
    member = _known_member(room, userID)
    services.member_ban(member=member)
    return _stored_member_out(member)


@router.post(
    "/rooms/{roomID}/members/{anytext:userID}/unban",
    response={200: MemberOut, **IN_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Lift a ban",
    operation_id="member_unban",
    tags=["members"],
)
def member_unban(request: HttpRequest, roomID: RoomPath, userID: UserPath) -> MemberOut:
    """Lift a ban: the user may join again with a token."""
    member = _known_member(_room(request, roomID), userID)
    services.member_unban(member=member)
    return _stored_member_out(member)


def _known_member(room: Room, user_id: str) -> Member:
    member = Member.objects.filter(room=room, user_id=user_id).first()
    if member is None:
        raise ApiError(404, "user_not_found", f"{user_id!r} has never been in this room.")
    return member


# --- chat and seats ---------------------------------------------------------------------------


@router.post(
    "/rooms/{roomID}/messages",
    response={201: MessageOut, **CHANGING_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Send a system message",
    operation_id="message_send",
    tags=["chat"],
)
def message_send(
    request: HttpRequest,
    roomID: RoomPath,
    payload: MessageIn,
) -> Status:
    """Show a system message in the room's chat, live. It has no sender: ``userID`` null and
    ``userName`` "System" (``message.onReceived`` on the socket carries the same)."""
    room = _live_room(request, roomID)
    message = services.message_send_system(room=room, text=payload.text.strip())
    state = message_state(message)
    out = MessageOut(
        messageID=state.message_id,
        userID=None,
        userName=state.user_name,
        text=state.text,
        timestamp=state.timestamp,
    )
    return Status(201, out)


@router.get(
    "/rooms/{roomID}/seats",
    response={200: SeatList, **IN_A_ROOM},
    summary="List seats",
    operation_id="seat_list",
    tags=["seats"],
)
def seat_list(request: HttpRequest, roomID: RoomPath) -> SeatList:
    """Every seat, in index order: locked or not, host seat or not, who sits there."""
    room = _room(request, roomID)
    seats = [seat for row in room_state(room).rows for seat in row]
    return SeatList(
        rows=list(room.seat_rows),
        seats=[
            SeatOut(
                index=seat.index,
                locked=seat.locked,
                isHostSeat=seat.is_host_seat,
                userID=seat.user_id,
                userName=seat.user_name,
                micOn=seat.mic_on,
                online=seat.online,
            )
            for seat in seats
        ],
    )


# --- the media player -------------------------------------------------------------------------


def _media_out(room: Room) -> MediaOut:
    media = media_state(room)
    files = [
        MediaFileOut(
            mediaID=f.media_id,
            name=f.name,
            size=f.size,
            extension=f.extension,
            type=cast(Literal["pureAudio", "video"], f.kind),
            totalDuration=f.duration_ms,
            info=MediaInfo(**{"width": 0, "height": 0, "frameRate": 0, **f.info}),
            keep=f.keep,
        )
        for f in room.media_files.all()
    ]
    return MediaOut(
        state=cast(Any, media.state),
        mediaID=media.media_id,
        name=media.name,
        type=cast(Any, media.type),
        totalDuration=media.total_duration,
        volume=media.volume,
        repeat=media.repeat,
        startedBy=media.started_by,
        position=media.position_now(int(time.time() * 1000)),
        files=files,
    )


@router.get(
    "/rooms/{roomID}/media",
    response={200: MediaOut, **IN_A_ROOM},
    summary="Read the media player",
    operation_id="media_get",
    tags=["media"],
)
def media_get(request: HttpRequest, roomID: RoomPath) -> MediaOut:
    """What the room's media player plays, where it is, and the room's files."""
    return _media_out(_room(request, roomID))


@router.post(
    "/rooms/{roomID}/media/play",
    response={
        200: MediaOut,
        **CHANGING_A_ROOM,
        403: ErrorOut,
        413: ErrorOut,
        502: ErrorOut,
        504: ErrorOut,
        **KEYED,
    },
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Play a file or URL",
    operation_id="media_play",
    tags=["media"],
)
def media_play(request: HttpRequest, roomID: RoomPath, payload: MediaPlayIn) -> MediaOut:
    """Play one of the room's files (a mediaID) or an https:// URL (fetched and probed first;
    only from the hosts the app lists) for everyone in the room, from the start, replacing
    what plays. ``startedBy`` is then null."""
    room = _live_room(request, roomID)
    media = media_source(room=room, actor=None, source=payload.filePathOrURL)
    services.media_play(room=room, actor=None, media=media, repeat=payload.enableRepeat)
    return _media_out(room)


@router.post(
    "/rooms/{roomID}/media/stop",
    response={200: MediaOut, **CHANGING_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Stop the media player",
    operation_id="media_stop",
    tags=["media"],
)
def media_stop(request: HttpRequest, roomID: RoomPath) -> MediaOut:
    """Stop and unload what plays (``noPlay``); stopping a stopped player changes nothing."""
    room = _live_room(request, roomID)
    services.media_stop(room=room, actor=None)
    return _media_out(room)


# --- room properties --------------------------------------------------------------------------


def _properties_out(room: Room) -> PropertiesOut:
    rows = RoomProperty.objects.filter(room=room).values_list("key", "value", "owner_user_id")
    return PropertiesOut(
        properties={key: value for key, value, _ in rows},
        owners={key: owner or None for key, _, owner in rows},
    )


@router.get(
    "/rooms/{roomID}/properties",
    response={200: PropertiesOut, **IN_A_ROOM},
    summary="Read the room's properties",
    operation_id="properties_get",
    tags=["properties"],
)
def properties_get(request: HttpRequest, roomID: RoomPath) -> PropertiesOut:
    """The room's properties (``room.queryProperties`` on the socket) and who owns each."""
    return _properties_out(_room(request, roomID))


@router.post(
    "/rooms/{roomID}/properties",
    response={200: PropertiesOut, **CHANGING_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Set room properties",
    operation_id="properties_set",
    tags=["properties"],
)
def properties_set(request: HttpRequest, roomID: RoomPath, payload: PropertiesIn) -> PropertiesOut:
    """Set these keys, all or none, as a host with ``isForce`` would (any key, whoever owns
    it; ``rolesCanWrite`` does not apply). Everyone in the room gets
    ``room.onPropertiesUpdated``."""
    room = _live_room(request, roomID)
    services.properties_set_by_api(
        room=room,
        properties=payload.properties,
        user_id=payload.userID,
        is_delete_after_owner_left=payload.isDeleteAfterOwnerLeft,
        is_update_owner=payload.isUpdateOwner,
    )
    return _properties_out(room)


@router.post(
    "/rooms/{roomID}/properties/delete",
    response={200: PropertiesOut, **CHANGING_A_ROOM, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Delete room properties",
    operation_id="properties_delete",
    tags=["properties"],
)
def properties_delete(
    request: HttpRequest, roomID: RoomPath, payload: PropertiesDeleteIn
) -> PropertiesOut:
    """Delete these keys, whoever owns them (a POST, so it takes an Idempotency-Key)."""
    room = _live_room(request, roomID)
    services.properties_delete_by_api(room=room, keys=payload.keys)
    return _properties_out(room)


# --- room commands ----------------------------------------------------------------------------


@router.post(
    "/rooms/{roomID}/commands",
    response={200: CommandOut, **CHANGING_A_ROOM, 413: ErrorOut, **KEYED},
    openapi_extra=IDEMPOTENCY_KEY,
    summary="Send a room command",
    operation_id="command_send",
    tags=["commands"],
)
def command_send(request: HttpRequest, roomID: RoomPath, payload: CommandIn) -> CommandOut:
    """Send a few bytes to everyone in the room now (``room.commandReceivedStream`` on their
    side), in the one order of the room's commands; nothing is stored. At most
    ``LIVEAUDIO_ROOM_COMMANDS_PER_SECOND`` a second from one sender: the named user's
    allowance (the same as their sockets'), or the API's own, one a room; past it ``429
    command_rate_limited``."""
    room = _live_room(request, roomID)
    sent = services.command_send_by_api(
        room=room, command=base64.b64decode(payload.command), user_id=payload.userID
    )
    return CommandOut(roomID=sent["roomID"], orderKey=sent["orderKey"])
