"""Creating rooms. (Ending one is in ``members``: it is about everyone in it.)"""

from __future__ import annotations

from django.db import transaction

from rooms.models import App, Room, Seat
from rooms.services.common import ServiceError

DEFAULT_SEAT_ROWS = [4, 4]
DEFAULT_HOST_INDEXES = [0]
MAX_SEATS = 64


def room_create(
    *,
    app: App,
    room_id: str,
    title: str = "",
    created_by: str = "",
    seat_rows: list[int] | None = None,
    host_indexes: list[int] | None = None,
) -> Room:
    rows = seat_rows if seat_rows is not None else DEFAULT_SEAT_ROWS
    hosts = host_indexes if host_indexes is not None else DEFAULT_HOST_INDEXES
    if not rows or any(not isinstance(n, int) or n < 1 for n in rows) or sum(rows) > MAX_SEATS:
        raise ServiceError("bad_layout", f"Seat rows must be positive counts, {MAX_SEATS} at most.")
    if any(not isinstance(i, int) or not 0 <= i < sum(rows) for i in hosts):
        raise ServiceError("bad_layout", "Host seat indexes must be seats of the layout.")
    room = Room(app=app, room_id=room_id, title=title, created_by=created_by)
    room.seat_rows, room.host_indexes = rows, hosts
    room.full_clean(exclude=["app"])
    with transaction.atomic():
        if Room.objects.filter(app=app, room_id=room_id).exists():
            raise ServiceError("room_exists", f"A room '{room_id}' already exists.")
        room.save()
        Seat.objects.bulk_create(Seat(room=room, index=i) for i in range(room.seat_count))
    return room
