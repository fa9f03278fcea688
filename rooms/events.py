"""Who is told what, once a transaction has committed.

Services call the ``on_commit_*`` functions inside their transaction; the message goes out
only if the change was stored. Shared parts (seat grid, member list, chat lines) are rendered
once here and the same HTML goes to every socket of the room; each socket adds what is its
own (the bottom bar) from the same ``RoomState``.

The app's webhook (``rooms.webhooks``) hears of some of the same events: its delivery rows are
written here, inside the service's transaction (they exist if and only if the change does),
and the delivery worker is woken once it commits. A new room is seen through ``post_save``,
so a room made by any entry point (service, admin) starts the same way.
"""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_save

from rooms import rendering, webhooks
from rooms.models import Member, Message, Room
from rooms.selectors import message_state, room_state


def room_group(room_pk: int) -> str:
    return f"room.{room_pk}"


# Room events that an app's webhook hears of, by their webhook name.
WEBHOOK_EVENTS = {
    "onUserJoined": "user.joined",
    "onUserLeft": "user.left",
    "seat.onChanged": "seat.changed",
}


def on_commit_room_changed(room: Room, events: list[dict]) -> None:
    # Callers hold the room's row lock (or write nothing else): revisions follow commits.
    Room.objects.filter(pk=room.pk).update(revision=F("revision") + 1)
    _queue_webhooks(room, events)
    transaction.on_commit(lambda: _send_room_update(room.pk, events))


def on_commit_room_created(room: Room) -> None:
    data = {"title": room.title, "createdBy": room.created_by}
    if webhooks.enqueue(room=room, event="room.started", data=data):
        transaction.on_commit(webhooks.wake)


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
    if webhooks.enqueue(room=room, event="room.ended", data={"reason": reason}):
        transaction.on_commit(webhooks.wake)
    transaction.on_commit(lambda: _group_send(room.pk, {"type": "room.ended", "reason": reason}))


def on_commit_member_removed(member: Member, channel_name: str, *, reason: str) -> None:
    if channel_name:
        payload = {"type": "member.removed", "reason": reason}
        transaction.on_commit(lambda: _channel_send(channel_name, payload))


def send_session_replaced(channel_name: str) -> None:
    """Tell a user's older tab that a newer one took over."""
    _channel_send(channel_name, {"type": "session.replaced"})


def _queue_webhooks(room: Room, events: list[dict]) -> None:
    told = [event for event in events if event.get("type") in WEBHOOK_EVENTS]
    if not told or not room.app.webhook_url:
        return  # the common case costs nothing more
    for event in told:
        webhooks.enqueue(
            room=room, event=WEBHOOK_EVENTS[event["type"]], data=_webhook_data(room, event)
        )
    transaction.on_commit(webhooks.wake)


def _webhook_data(room: Room, event: dict) -> dict:
    if event["type"] == "seat.onChanged":
        return {"taken": event["taken"], "untaken": event["untaken"]}
    user_id = event["userID"]
    names = Member.objects.filter(room=room, user_id=user_id).values_list("user_name", flat=True)
    return {"userID": user_id, "userName": names.first() or ""}


def _room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: object) -> None:
    if created and not kwargs.get("raw"):
        on_commit_room_created(instance)


post_save.connect(_room_saved, sender=Room, dispatch_uid="rooms.events.room_created")


def _send_room_update(room_pk: int, events: list[dict]) -> None:
    room = Room.objects.select_related("app").get(pk=room_pk)
    _group_send(room_pk, {"type": "room.update", **room_update_parts(room), "events": events})


def room_update_parts(room: Room) -> dict[str, str]:
    """The room as it is now, for a ``room.update``: its shared HTML and its state."""
    state = room_state(room)
    return {
        "html": rendering.room_parts_html(state),
        # Serialised once here: a string is cheap for the channel layer to copy or pack for
        # every socket of the room, and most sockets pass it on to their client unchanged.
        "state_json": json.dumps(state.as_json()),
    }


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
