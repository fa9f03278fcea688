"""Reads. One ``RoomState`` feeds both renderings: the HTML partials and the JSON events."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import F, Q

from rooms import roles
from rooms.errors import ServiceError
from rooms.models import Member, Message, Playback, Role, Room, default_property_roles


@dataclass(frozen=True)
class SeatState:
    index: int
    locked: bool
    is_host_seat: bool
    user_id: str | None
    user_name: str | None
    mic_on: bool
    online: bool


@dataclass(frozen=True)
class MemberState:
    user_id: str
    user_name: str
    role: str
    online: bool
    mic_on: bool
    seat_index: int | None
    # Computed once on the server (rooms.roles): pages and the SDK read it, never re-derive it.
    has_host_permissions: bool = False


@dataclass(frozen=True)
class MessageState:
    message_id: int
    user_id: str | None
    user_name: str
    text: str
    attributes: dict
    timestamp: int  # milliseconds since the epoch, as the seed's message timestamp


@dataclass(frozen=True)
class RequestState:
    user_id: str
    user_name: str
    index: int | None
    requested_at: int  # ms since the epoch: the host's queue shows when each hand went up


@dataclass(frozen=True)
class InvitationState:
    user_id: str
    user_name: str
    inviter_id: str | None
    invited_at: int


NO_INFO = {"width": 0, "height": 0, "frameRate": 0}


@dataclass(frozen=True)
class MediaState:
    """The room's media player, as the page and the SDK read it (camelCase on the wire).

    ``position`` is the position at ``position_at`` (ms since the epoch); while playing it
    moves on from there. ``can_control`` is per socket (``rooms.realtime.view``): here it is
    whether a member of the audience may, which is what the shared JSON says.
    """

    state: str = "noPlay"
    media_id: str | None = None
    name: str = ""
    extension: str = ""
    type: str = "unknown"
    info: dict = field(default_factory=lambda: dict(NO_INFO))
    total_duration: int = 0
    volume: int = 30
    repeat: bool = False
    started_by: str | None = None
    position: int = 0
    position_at: int = 0
    key: str = ""
    roles_can_control: tuple[str, ...] = ("host",)
    can_control: bool = False

    WIRE = {
        "state": "state",
        "media_id": "mediaID",
        "name": "name",
        "extension": "extension",
        "type": "type",
        "info": "info",
        "total_duration": "totalDuration",
        "volume": "volume",
        "repeat": "repeat",
        "started_by": "startedBy",
        "position": "position",
        "position_at": "positionAt",
        "key": "key",
        "roles_can_control": "rolesCanControl",
        "can_control": "canControl",
    }

    def as_json(self) -> dict:
        data = asdict(self)
        out = {wire: data[name] for name, wire in self.WIRE.items()}
        out["rolesCanControl"] = list(self.roles_can_control)
        return out

    @classmethod
    def from_json(cls, data: dict) -> MediaState:
        values = {name: data[wire] for name, wire in cls.WIRE.items() if wire in data}
        values["roles_can_control"] = tuple(values.get("roles_can_control", ("host",)))
        return cls(**values)

    def position_now(self, now_ms: int) -> int:
        if self.state != "playing":
            return self.position
        position = self.position + max(0, now_ms - self.position_at)
        if self.repeat and self.total_duration > 0:
            position %= self.total_duration
        return min(position, self.total_duration)


@dataclass(frozen=True)
class RoomState:
    app_id: int
    room_id: str
    title: str
    live: bool
    rows: list[list[SeatState]]
    members: list[MemberState]
    requests: list[RequestState] = field(default_factory=list)  # oldest first
    invitations: list[InvitationState] = field(default_factory=list)
    # The room's change counter when this state was read: a larger one is newer.
    revision: int = 0
    media: MediaState = field(default_factory=MediaState)
    # The room's properties (room.updateProperty...), {key: value}: a (re)joining socket
    # gets them with its welcome, every change with its event.
    properties: dict[str, str] = field(default_factory=dict)
    topic: str = ""  # what the room is about now (its host sets it)
    # config.roomProperties.rolesCanWrite as the host's config set it on the room; on the
    # wire ``roomProperties: {rolesCanWrite, canWrite}``, ``canWrite`` per socket
    # (``rooms.realtime.view``), here whether a member of the audience may.
    roles_can_write: tuple[str, ...] = tuple(default_property_roles())

    def member(self, user_id: str) -> MemberState | None:
        return next((m for m in self.members if m.user_id == user_id), None)

    def has_host_permissions(self, user_id: str) -> bool:
        member = self.member(user_id)
        return member is not None and member.has_host_permissions

    def as_json(self) -> dict:
        data = asdict(self)
        data["media"] = self.media.as_json()
        roles_can_write = list(data.pop("roles_can_write"))
        can_write = roles.can_write_properties(
            "audience", host_permissions=False, roles=roles_can_write
        )
        data["roomProperties"] = {"rolesCanWrite": roles_can_write, "canWrite": can_write}
        return data

    def can_write_properties(self, user_id: str) -> bool:
        """config.roomProperties.rolesCanWrite for this user, computed here for every page."""
        member = self.member(user_id)
        return member is not None and roles.can_write_properties(
            member.role,
            host_permissions=member.has_host_permissions,
            roles=list(self.roles_can_write),
        )

    def can_control_media(self, user_id: str) -> bool:
        """config.mediaPlayer.rolesCanControl for this user, computed here for every page."""
        member = self.member(user_id)
        return member is not None and roles.can_control_media(
            member.role,
            host_permissions=member.has_host_permissions,
            roles=list(self.media.roles_can_control),
        )

    def seen_by(self, user_id: str) -> RoomState:
        """The state as one user may see it: the queue and invitations are the hosts'
        business; everyone else sees only their own."""
        if self.has_host_permissions(user_id):
            return self
        requests = [r for r in self.requests if r.user_id == user_id]
        invitations = [i for i in self.invitations if i.user_id == user_id]
        if len(requests) == len(self.requests) and len(invitations) == len(self.invitations):
            return self  # nothing to hide: the shared JSON can go out as it is
        return replace(self, requests=requests, invitations=invitations)

    def json_over(self, data: dict) -> dict:
        """This (filtered) state as JSON, reusing ``data`` (the full state's JSON) for
        everything the filter does not touch."""
        return {
            **data,
            "requests": [asdict(r) for r in self.requests],
            "invitations": [asdict(i) for i in self.invitations],
        }

    @classmethod
    def from_json(cls, data: dict) -> RoomState:
        return cls(
            app_id=data["app_id"],
            room_id=data["room_id"],
            title=data["title"],
            live=data["live"],
            rows=[[SeatState(**seat) for seat in row] for row in data["rows"]],
            members=[MemberState(**member) for member in data["members"]],
            requests=[RequestState(**r) for r in data.get("requests", [])],
            invitations=[InvitationState(**i) for i in data.get("invitations", [])],
            revision=data.get("revision", 0),
            media=MediaState.from_json(data["media"]) if "media" in data else MediaState(),
            properties=dict(data.get("properties", {})),
            topic=data.get("topic", ""),
            roles_can_write=tuple(
                data.get("roomProperties", {}).get("rolesCanWrite", default_property_roles())
            ),
        )


def displayed_role(*, stored_role: str, seated: bool) -> str:
    """Hosts and co-hosts keep their role; anyone else on a seat is a speaker."""
    if stored_role in (Role.HOST, Role.COHOST):
        return stored_role
    return Role.SPEAKER if seated else Role.AUDIENCE


def room_state(room: Room) -> RoomState:
    # Read first: what follows is at least this new (a change committed meanwhile is
    # counted by its own, later, update).
    revision, media_roles, property_roles = (
        Room.objects.filter(pk=room.pk)
        .values_list("revision", "media_roles", "property_roles")
        .get()
    )
    # Everyone who ever joined stays a row; only those present or holding a seat (the grace
    # period) are part of the state, so ask the database for just those.
    # Plain rows, not model instances: a room of hundreds is read on every change, and
    # building (and converting the dates of) a Member per row was most of that read.
    members: list[Any] = list(
        room.members.filter(banned=False)
        .filter(Q(online=True) | Q(seats__isnull=False))
        .values_list("pk", "user_id", "user_name", "role", "online", "mic_on", named=True)
    )
    seat_of = {}
    seats = list(room.seats.select_related("occupant").order_by("index"))
    for seat in seats:
        if seat.occupant_id is not None:
            seat_of[seat.occupant_id] = seat.index
    host_online = any(m.role == Role.HOST and m.online for m in members)
    seat_states = [
        SeatState(
            index=seat.index,
            locked=seat.locked,
            is_host_seat=seat.index in room.host_indexes,
            user_id=seat.occupant.user_id if seat.occupant else None,
            user_name=seat.occupant.user_name if seat.occupant else None,
            mic_on=bool(seat.occupant and seat.occupant.mic_on),
            online=bool(seat.occupant and seat.occupant.online),
        )
        for seat in seats
    ]
    return RoomState(
        app_id=room.app.app_id,
        room_id=room.room_id,
        title=room.title or room.room_id,
        topic=room.topic,
        live=room.is_live,
        rows=_split_rows(seat_states, room.seat_rows),
        members=[
            MemberState(
                user_id=m.user_id,
                user_name=m.user_name,
                role=displayed_role(stored_role=m.role, seated=m.pk in seat_of),
                online=m.online,
                mic_on=m.mic_on,
                seat_index=seat_of.get(m.pk),
                has_host_permissions=roles.has_host_permissions(
                    m.role, host_online=lambda: host_online
                ),
            )
            for m in members
        ],
        requests=[
            RequestState(
                user_id=r.member.user_id,
                user_name=r.member.user_name,
                index=r.index,
                requested_at=_ms(r.created_at),
            )
            for r in room.seat_requests.select_related("member")
        ],
        invitations=[
            InvitationState(
                user_id=i.invitee.user_id,
                user_name=i.invitee.user_name,
                inviter_id=i.inviter.user_id if i.inviter else None,
                invited_at=_ms(i.created_at),
            )
            for i in room.seat_invitations.select_related("invitee", "inviter")
        ],
        revision=revision,
        media=media_state(room, media_roles),
        properties=dict(room.properties.values_list("key", "value")),
        roles_can_write=tuple(property_roles or ()),
    )


# --- the member list, a page at a time ------------------------------------------------------

MEMBER_PAGE_SIZE = 50
MEMBER_QUERY_MAX_CHARS = 64  # a member's name is at most 64 characters
_CURSOR_SEGMENTS = {"seated": True, "listening": False}


@dataclass(frozen=True)
class MemberCursor:
    """Where a page of the member list ended: its last row's segment (the seated come first,
    then everyone else) and user. The place in the list is that member's ``(joined_at, pk)``,
    which never change, so a cursor stays good while the list changes around it."""

    seated: bool
    user_id: str

    def __str__(self) -> str:
        return f"{'seated' if self.seated else 'listening'}:{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> MemberCursor:
        """``seated:<userID>`` or ``listening:<userID>``; anything else is ``bad_cursor``."""
        segment, _, user_id = text.partition(":")
        if segment not in _CURSOR_SEGMENTS or not 1 <= len(user_id) <= 128:
            raise ServiceError("bad_cursor", "after must be a cursor this server gave.")
        return cls(seated=_CURSOR_SEGMENTS[segment], user_id=user_id)

    @classmethod
    def after_member(cls, member: MemberState) -> MemberCursor:
        return cls(seated=member.seat_index is not None, user_id=member.user_id)


@dataclass(frozen=True)
class MemberPage:
    members: list[MemberState]
    next: MemberCursor | None  # where the next page starts; None: this was the last


def member_page(
    *,
    room: Room,
    reader_id: str,
    after: MemberCursor | None = None,
    query: str = "",
    hidden: Collection[str] = (),
    size: int = MEMBER_PAGE_SIZE,
) -> MemberPage:
    """A page of the room's member list as ``reader_id`` may read it, in the order the page's
    own list shows (``rooms.rendering``): the seated first, then the others present, each by
    when they first joined. ``query``: only names that contain it, in any case. ``hidden``:
    user IDs the reader's config leaves out. Keyset, not offset: each segment is one query
    with a LIMIT on the ``member_list_order`` index, whatever the room's size."""
    _require_reader(room, reader_id)
    anchor = _anchor(room, after) if after is not None else None
    rows: list[MemberState] = []
    if after is None or after.seated:
        rows = _segment(room, seated=True, anchor=anchor, query=query, hidden=hidden, n=size + 1)
        anchor = None  # the others' segment is then read from its start
    if len(rows) <= size:
        rows += _segment(
            room, seated=False, anchor=anchor, query=query, hidden=hidden, n=size + 1 - len(rows)
        )
    shown = rows[:size]
    more = len(rows) > size
    return MemberPage(members=shown, next=MemberCursor.after_member(shown[-1]) if more else None)


def _require_reader(room: Room, reader_id: str) -> None:
    """Only someone in the room reads who else is: the same rule as joining's, read here."""
    if not room.is_live:
        raise ServiceError("room_ended", "This room has ended.")
    present = room.members.filter(user_id=reader_id, online=True, banned=False)
    if not present.exists():
        raise ServiceError("not_permitted", "Only the room's members may read its member list.")


def _anchor(room: Room, after: MemberCursor) -> tuple[datetime, int]:
    found = room.members.filter(user_id=after.user_id).values_list("joined_at", "pk").first()
    if found is None:
        raise ServiceError("bad_cursor", "after names no member of this room.")
    return found


def _segment(
    room: Room,
    *,
    seated: bool,
    anchor: tuple[datetime, int] | None,
    query: str,
    hidden: Collection[str],
    n: int,
) -> list[MemberState]:
    rows = room.members.filter(banned=False)
    # The same members as room_state's: the seated (online or in their grace period), and
    # everyone else who is online.
    rows = rows.filter(seats__isnull=False) if seated else rows.filter(online=True, seats=None)
    if query:
        rows = rows.filter(user_name__icontains=query)
    if hidden:
        rows = rows.exclude(user_id__in=list(hidden))
    if anchor is not None:
        joined_at, pk = anchor
        rows = rows.filter(Q(joined_at__gt=joined_at) | Q(joined_at=joined_at, pk__gt=pk))
    fields = ["user_id", "user_name", "role", "online", "mic_on"]
    found = rows.order_by("joined_at", "pk").values(*fields, seat=F("seats__index"))[:n]
    host_online = functools.cache(lambda: room.members.filter(role=Role.HOST, online=True).exists())
    return [
        MemberState(
            user_id=m["user_id"],
            user_name=m["user_name"],
            role=displayed_role(stored_role=m["role"], seated=seated),
            online=m["online"],
            mic_on=m["mic_on"],
            seat_index=m["seat"] if seated else None,
            has_host_permissions=roles.has_host_permissions(m["role"], host_online=host_online),
        )
        for m in found
    ]


def is_seated(room: Room, user_id: str) -> bool:
    """Whether `user_id` holds a seat of `room` (one indexed row, not the room's state)."""
    return room.seats.filter(occupant__user_id=user_id).exists()


def media_state(room: Room, media_roles: list[str] | None = None) -> MediaState:
    """The room's player; ``media_roles``: the room's rolesCanControl if read already."""
    if media_roles is None:
        media_roles = Room.objects.filter(pk=room.pk).values_list("media_roles", flat=True).get()
    roles_can_control = tuple(media_roles or ())
    can = roles.can_control_media("audience", host_permissions=False, roles=list(roles_can_control))
    playback = Playback.objects.filter(room=room).select_related("media").first()
    if playback is None:
        return MediaState(roles_can_control=roles_can_control, can_control=can)
    media = playback.media
    return MediaState(
        state=playback.state,
        media_id=media.media_id if media else None,
        name=media.name if media else "",
        extension=media.extension if media else "",
        type=media.kind if media else "unknown",
        info=dict(media.info) if media and media.info else dict(NO_INFO),
        total_duration=media.duration_ms if media else 0,
        volume=playback.volume,
        repeat=playback.repeat,
        started_by=playback.started_by or None,
        position=playback.position_ms,
        position_at=_ms(playback.position_at),
        key=playback.key,
        roles_can_control=roles_can_control,
        can_control=can,
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _split_rows(seats: list[SeatState], counts: list[int]) -> list[list[SeatState]]:
    rows, start = [], 0
    for count in counts:
        rows.append(seats[start : start + count])
        start += count
    return rows


def message_state(message: Message) -> MessageState:
    sender: Member | None = message.sender
    return MessageState(
        message_id=message.pk,
        user_id=sender.user_id if sender else None,
        user_name=sender.user_name if sender else "System",
        text=message.text,
        attributes=message.attributes,
        timestamp=_ms(message.created_at),
    )


def recent_messages(room: Room, limit: int | None = None) -> list[MessageState]:
    limit = limit or settings.LIVEAUDIO_HISTORY_MESSAGES
    newest = room.messages.filter(deleted=False).select_related("sender").order_by("-pk")[:limit]
    return [message_state(m) for m in reversed(list(newest))]


def live_rooms(app_id: int) -> list[Room]:
    return list(
        Room.objects.filter(app__app_id=app_id, ended_at__isnull=True).select_related("app")
    )
