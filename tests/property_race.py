"""Run by tests/test_room_properties.py in a process of its own, on a real database file or
PostgreSQL (the test's in-memory SQLite cannot be shared by threads that each write): eight
users set one room property at the same instant, each on a thread and a connection of its
own. Prints what each was told and what the database holds, as JSON."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import django

django.setup()

from django.db import connection  # noqa: E402 - after django.setup()

from rooms import services  # noqa: E402
from rooms.models import App, Member, RoomProperty  # noqa: E402

WRITERS = 8


def main() -> None:
    app = App.objects.create(app_id=778899, name="Race")
    room = services.room_create(app=app, room_id="race")
    writers = [
        Member.objects.create(room=room, user_id=f"u{i}", user_name=f"U{i}", online=True)
        for i in range(WRITERS)
    ]
    start = threading.Barrier(WRITERS)

    def write(member: Member) -> str:
        start.wait()
        try:
            services.property_update(
                member=member, room_id="race", key="stage", value=member.user_id
            )
            return "set"
        except services.ServiceError as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(WRITERS) as pool:
        told = dict(zip([m.user_id for m in writers], pool.map(write, writers), strict=True))
    rows = list(RoomProperty.objects.filter(room=room).values_list("key", "value", "owner_user_id"))
    print(json.dumps({"told": told, "rows": rows}))


if __name__ == "__main__":
    main()
