"""Room commands, the seed's ``room.sendCommand`` (ZIM's room commands): a few bytes from one
member to every other member of the room, now, in one order for everybody.

Nothing is kept: a command is for whoever is in the room when it is sent. Its ``orderKey``
is the room's ``command_order``, bumped in the command's own transaction under the room's
row lock, so keys follow commits and no two commands of a room share one, whichever server
process took them. The sockets put what they receive back into that order
(``rooms.realtime.commands``), since two processes' broadcasts may cross on the way.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.db.models import F

from rooms import events
from rooms.models import Member, Room
from rooms.services.common import ServiceError, active_member, lock_room


def command_send(*, member: Member, room_id: str, command: bytes) -> dict:
    """Send ``command`` to the room's other members; returns ``{roomID, orderKey}``."""
    limit = settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES
    if len(command) > limit:
        raise ServiceError(
            "command_too_large", f"A command is at most {limit} bytes; this one is {len(command)}."
        )
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        if room_id != room.room_id:
            raise ServiceError("wrong_room", f"You are in room {room.room_id!r}, not {room_id!r}.")
        Room.objects.filter(pk=room.pk).update(command_order=F("command_order") + 1)
        order_key = Room.objects.values_list("command_order", flat=True).get(pk=room.pk)
        message = {
            "roomID": room.room_id,
            "command": command,
            "senderUserID": member.user_id,
            "timestamp": int(time.time() * 1000),
            "orderKey": order_key,
        }
        events.broadcast_room_command(room.pk, message)
    return {"roomID": room.room_id, "orderKey": order_key}


def command_order(room: Room) -> int:
    """The room's last orderKey: a socket that joins now delivers the commands after it."""
    return Room.objects.values_list("command_order", flat=True).get(pk=room.pk)
