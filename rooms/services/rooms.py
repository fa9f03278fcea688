"""Creating rooms. (Ending one is in ``members``: it is about everyone in it.)"""

from __future__ import annotations

import re
from typing import TypeGuard

from django.db import IntegrityError, transaction

from rooms.models import ROOM_ID_PATTERN, App, Member, Room, Seat, room_id_validator
from rooms.services.common import (
    ServiceError,
    active_member,
    lock_room,
    require_host_permissions,
    room_changed,
)
from rooms.text import InvalidText, clean_text

DEFAULT_SEAT_ROWS = [4, 4]
DEFAULT_HOST_INDEXES = [0]
MAX_SEATS = 64
MAX_TITLE = 120  # Room.title
MAX_TOPIC = 200  # Room.topic
MAX_CREATED_BY = 128  # Room.created_by: a user ID


def is_room_id(value: object) -> bool:
    """1-64 of ``A-Z a-z 0-9 _ . -``, the whole text (a trailing line break too is refused)."""
    return isinstance(value, str) and re.fullmatch(ROOM_ID_PATTERN, value) is not None


def room_create(
    *,
    app: App,
    room_id: str,
    title: str = "",
    created_by: str = "",
    seat_rows: list[int] | None = None,
    host_indexes: list[int] | None = None,
    topic: str = "",
) -> Room:
    topic = checked_topic(topic)
    rows, hosts = room_check(
        room_id=room_id,
        title=title,
        created_by=created_by,
        seat_rows=seat_rows,
        host_indexes=host_indexes,
    )
    room = Room(app=app, room_id=room_id, title=title, created_by=created_by, topic=topic)
    room.seat_rows, room.host_indexes = rows, hosts
    exists = ServiceError("room_exists", f"A room '{room_id}' already exists.")
    try:
        with transaction.atomic():
            # An ended room's ID starts a new session of it; its old one stays, ended.
            if Room.objects.filter(app=app, room_id=room_id, ended_at__isnull=True).exists():
                raise exists
            room.save()
            Seat.objects.bulk_create(Seat(room=room, index=i) for i in range(room.seat_count))
    except IntegrityError:  # one_live_room_per_id: another request made it meanwhile
        raise exists from None
    return room


def room_check(
    *,
    room_id: object,
    title: object = "",
    created_by: object = "",
    seat_rows: object = None,
    host_indexes: object = None,
) -> tuple[list[int], list[int]]:
    """What ``room_create`` refuses, but for a room that exists already; the layout to use.
    A form calls it to show a refusal at its field before anything is saved."""
    rows = seat_rows if seat_rows is not None else DEFAULT_SEAT_ROWS
    hosts = host_indexes if host_indexes is not None else DEFAULT_HOST_INDEXES
    if not _counts(rows) or not rows or any(n < 1 for n in rows) or sum(rows) > MAX_SEATS:
        raise ServiceError("bad_layout", f"Seat rows must be positive counts, {MAX_SEATS} at most.")
    if not _counts(hosts) or any(not 0 <= i < sum(rows) for i in hosts):
        raise ServiceError("bad_layout", "Host seat indexes must be seats of the layout.")
    _check_names(room_id=room_id, title=title, created_by=created_by)
    return rows, hosts


def _counts(value: object) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) for n in value
    )


def checked_topic(topic: object) -> str:
    """A room's topic: one line of at most MAX_TOPIC characters, trimmed ("" for none)."""
    if not isinstance(topic, str):
        raise ServiceError("topic_invalid", "The topic must be text.")
    try:
        return clean_text(topic.strip(), name="The topic", max_chars=MAX_TOPIC)
    except InvalidText as exc:
        raise ServiceError("topic_invalid", exc.message) from exc


def room_set_topic(*, actor: Member, topic: object) -> str:
    """``room.setTopic``: what the room is about now, under its title (host permissions)."""
    topic = checked_topic(topic)
    with transaction.atomic():
        room = lock_room(actor.room)
        actor = active_member(actor)
        require_host_permissions(actor)
        Room.objects.filter(pk=room.pk).update(topic=topic)
        room.topic = topic
        room_changed(room, [{"type": "room.onTopicChanged", "topic": topic}])
    return topic


def _check_names(*, room_id: object, title: object, created_by: object) -> None:
    """Codes name the field: each entry point maps them (the lobby form to its fields)."""
    if not is_room_id(room_id):
        raise ServiceError("room_id_invalid", str(room_id_validator.message))
    for code, value, name, longest in (
        ("title_invalid", title, "The title", MAX_TITLE),
        ("created_by_invalid", created_by, "createdBy", MAX_CREATED_BY),
    ):
        try:
            clean_text(value, name=name, max_chars=longest)
        except InvalidText as exc:
            raise ServiceError(code, exc.message) from exc
