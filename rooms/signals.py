"""Model signals, connected in ``RoomsConfig.ready()``.

A room made by any entry point (a service, admin, a shell) starts the same way: its app's
webhook hears ``room.started`` in the transaction that stored it.
"""

from __future__ import annotations

from django.db.models.signals import post_save

from rooms import webhooks
from rooms.models import Room


def room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: object) -> None:
    if created and not kwargs.get("raw"):
        webhooks.enqueue_room_started(room=instance)


def connect() -> None:
    post_save.connect(room_saved, sender=Room, dispatch_uid="rooms.signals.room_saved")
