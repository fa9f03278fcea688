"""Who is told what, once a transaction has committed.

Services call the ``on_commit_*`` functions inside their transaction; the message goes out
only if the change was stored. Shared parts (seat grid, member list, chat lines) are rendered
once here and the same HTML goes to every socket of the room; each socket adds what is its
own (the bottom bar) from the same ``RoomState``.
"""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from rooms import rendering
from rooms.models import Member, Message, Room
from rooms.selectors import message_state, room_state


def room_group(room_pk: int) -> str:
    return f"room.{room_pk}"


def on_commit_room_changed(room: Room, events: list[dict]) -> None:
    transaction.on_commit(lambda: _send_room_update(room.pk, events))


def on_commit_message_sent(message: Message) -> None:
    transaction.on_commit(lambda: _send_message(message.pk))


def on_commit_message_deleted(message: Message) -> None:
    payload = {
        "type": "room.message",
        "html": rendering.message_removed_html(message.pk),
        "event": {"type": "message.onDeleted", "messageID": message.pk},
    }
    transaction.on_commit(lambda: _group_send(message.room_id, payload))


def on_commit_room_ended(room: Room, *, reason: str) -> None:
    transaction.on_commit(lambda: _group_send(room.pk, {"type": "room.ended", "reason": reason}))


def on_commit_member_removed(member: Member, channel_name: str, *, reason: str) -> None:
    if channel_name:
        payload = {"type": "member.removed", "reason": reason}
        transaction.on_commit(lambda: _channel_send(channel_name, payload))


def send_session_replaced(channel_name: str) -> None:
    """Tell a user's older tab that a newer one took over."""
    _channel_send(channel_name, {"type": "session.replaced"})


def _send_room_update(room_pk: int, events: list[dict]) -> None:
    room = Room.objects.select_related("app").get(pk=room_pk)
    state = room_state(room)
    payload = {
        "type": "room.update",
        "html": rendering.room_parts_html(state),
        # Serialised once here: a string is cheap for the channel layer to copy or pack for
        # every socket of the room, and most sockets pass it on to their client unchanged.
        "state_json": json.dumps(state.as_json()),
        "events": events,
    }
    _group_send(room_pk, payload)


def _send_message(message_pk: int) -> None:
    message = Message.objects.select_related("sender").get(pk=message_pk)
    msg = message_state(message)
    payload = {
        "type": "room.message",
        "html": rendering.message_added_html(msg),
        "event": {"type": "message.onReceived", "message": rendering.message_json(msg)},
    }
    _group_send(message.room_id, payload)


def _group_send(room_pk: int, payload: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(room_group(room_pk), payload)


def _channel_send(channel_name: str, payload: dict) -> None:
    async_to_sync(get_channel_layer().send)(channel_name, payload)
