"""Room commands, the seed's ``room.sendCommand`` (ZIM's room commands): a few bytes from one
member to every other member of the room, now, in one order for everybody.

Nothing is kept: a command is for whoever is in the room when it is sent. Its ``orderKey``
is the room's ``command_order``, bumped in the command's own transaction under the room's
row lock, so keys follow commits and no two commands of a room share one, whichever server
process took them. The sockets put what they receive back into that order
(``rooms.realtime.commands``), since two processes' broadcasts may cross on the way.

The integrator's backend sends commands too (``command_send_by_api``, the HTTP API): the
same order, the same size limit, the same per-sender rate (``sender_rate``: per user per
room, shared by every socket and, in scale-out mode, every process).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.db.models import F

from rooms import events
from rooms.models import Member, Room
from rooms.services.common import ServiceError, active_member, lock_room
from rooms.services.sender_rate import sender_allowed


def command_send(*, member: Member, room_id: str, command: bytes) -> dict:
    """Send ``command`` to the room's other members; returns ``{roomID, orderKey}``."""
    _check_size(command)
    _check_rate(member.room_id, member.user_id)
    with transaction.atomic():
        room = lock_room(member.room)
        member = active_member(member)
        if room_id != room.room_id:
            raise ServiceError("wrong_room", f"You are in room {room.room_id!r}, not {room_id!r}.")
        order_key = _broadcast(room, command, sender=member.user_id)
    return {"roomID": room.room_id, "orderKey": order_key}


def command_send_by_api(*, room: Room, command: bytes, user_id: str | None = None) -> dict:
    """The HTTP API's command: to **every** socket of the room, in the same order as the
    members' own. ``senderUserID`` is ``user_id`` (the backend speaking for that user, who
    need not be in the room; their own sockets get it too) or null (the API itself). Its
    rate is that user's, or one allowance a room for the API's own."""
    _check_size(command)
    _check_rate(room.pk, API_SENDER if user_id is None else user_id)
    with transaction.atomic():
        room = lock_room(room)
        order_key = _broadcast(room, command, sender=user_id, to_sender=True)
    return {"roomID": room.room_id, "orderKey": order_key}


# The API's own commands count as this sender (no user ID is empty).
API_SENDER = ""


def _check_size(command: bytes) -> None:
    limit = settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES
    if len(command) > limit:
        raise ServiceError(
            "command_too_large", f"A command is at most {limit} bytes; this one is {len(command)}."
        )


def _check_rate(room_pk: int, sender: str) -> None:
    if not sender_allowed(room_pk, sender):
        limit = settings.LIVEAUDIO_ROOM_COMMANDS_PER_SECOND
        raise ServiceError(
            "command_rate_limited",
            f"At most {limit} room commands a second from one sender; slow down.",
        )


def _broadcast(room: Room, command: bytes, *, sender: str | None, to_sender: bool = False) -> int:
    """Under the room's lock: the next orderKey, and the command to the room's group after
    the commit. ``to_sender``: the sender's own sockets get it too (an API command)."""
    Room.objects.filter(pk=room.pk).update(command_order=F("command_order") + 1)
    order_key = Room.objects.values_list("command_order", flat=True).get(pk=room.pk)
    message = {
        "roomID": room.room_id,
        "command": command,
        "senderUserID": sender,
        "timestamp": int(time.time() * 1000),
        "orderKey": order_key,
        "toSender": to_sender,
    }
    events.broadcast_room_command(room.pk, message)
    return order_key


def command_order(room: Room) -> int:
    """The room's last orderKey: a socket that joins now delivers the commands after it."""
    return Room.objects.values_list("command_order", flat=True).get(pk=room.pk)
