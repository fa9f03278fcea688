"""Who is told what, once a transaction has committed. This module only sends.

Two kinds of message, and the service that makes a change picks one:
- **a room change** (``broadcast_room_changed``): after the commit the room's state is read
  once, its shared parts rendered once, and the same message goes to every socket of the
  room; each socket adds what is its own (the bottom bar) from the same ``RoomState``. An
  event inside it may name its recipients (``to``); the others never see it.
- **a notice** (``notify_users``): a private event for some users' sockets only, sent to their
  own groups; no state is read, nothing rendered, no revision counted. The sockets deliver it
  with the state their page already has.

Counting the change (the room's ``revision``) and writing webhook rows are the services' work
(``rooms.services.common.room_changed``), inside their transaction. A callback that fails
after the commit (the channel layer is down) is logged and does not undo or fail the change:
sockets repair a missed update from the room's revision (``rooms.realtime.watch``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

from rooms import lifecycle, rendering
from rooms.models import Message, Room
from rooms.selectors import message_state, room_state

log = logging.getLogger(__name__)


def room_group(room_pk: int) -> str:
    return f"room.{room_pk}"


def user_group(room_pk: int, user_id: str) -> str:
    """The group of one user's sockets in one room. User IDs are any text, and group names
    are short ASCII: a digest stands for the ID."""
    digest = hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"room.{room_pk}.user.{digest}"


def plain(html: str) -> str:
    """The rendered HTML as a plain ``str``. The in-memory channel layer deep-copies each
    message for every socket of the group: a plain string is shared by all the copies, but
    Django's ``SafeString`` (a subclass) is copied, the room's whole HTML once per socket and
    queued message (3.2-3.75 GB in a 200-join storm; docs/performance.md)."""
    return str.__str__(html)


def after_commit(send: Callable[[], None]) -> None:
    """Run ``send`` once the current transaction commits (at once outside one). A failure
    (the channel layer is down) is one line in the log, and the change stays made: sockets
    catch up from the room's revision."""

    def guarded() -> None:
        try:
            send()
        except Exception as exc:
            log.warning("a broadcast was not sent, sockets will catch up: %r", exc)

    transaction.on_commit(guarded, robust=True)


def broadcast_room_changed(room_pk: int, events: list[dict]) -> None:
    after_commit(lambda: _send_room_update(room_pk, events))


def notify_users(room: Room, user_ids: Iterable[str], event: dict) -> None:
    """A private notice to these users' sockets in ``room``, and to nobody else."""
    groups = [user_group(room.pk, user_id) for user_id in user_ids]
    payload = {"type": "room.notice", "events": [event]}

    def send() -> None:
        for group in groups:
            _group_send(group, payload)

    after_commit(send)


def broadcast_message_sent(message: Message) -> None:
    after_commit(lambda: _send_message(message.pk))


def broadcast_message_deleted(message: Message) -> None:
    payload = {
        "type": "room.message",
        "html": plain(rendering.message_removed_html(message.pk)),
        "event": {"type": "message.onDeleted", "messageID": message.pk},
    }
    after_commit(lambda: _group_send(room_group(message.room_id), payload))


def broadcast_room_command(room_pk: int, message: dict) -> None:
    """A room command to every socket of the room; each puts it in the room's order and
    leaves out its own (``rooms.realtime.commands``)."""
    payload = {"type": "room.command", "message": message}
    after_commit(lambda: _group_send(room_group(room_pk), payload))


def broadcast_room_ended(room: Room, *, reason: str) -> None:
    payload = {"type": "room.ended", "reason": reason}
    after_commit(lambda: _group_send(room_group(room.pk), payload))


def tell_member_removed(channel_name: str, *, reason: str, banned: bool = False) -> None:
    if channel_name:
        payload = {"type": "member.removed", "reason": reason, "banned": banned}
        after_commit(lambda: _channel_send(channel_name, payload))


def send_session_replaced(channel_name: str) -> None:
    """Tell a user's older tab that a newer one took over."""
    _channel_send(channel_name, {"type": "session.replaced"})


def _send_room_update(room_pk: int, events: list[dict]) -> None:
    room = Room.objects.select_related("app").get(pk=room_pk)
    payload = {"type": "room.update", **room_update_parts(room), "events": events}
    _group_send(room_group(room_pk), payload)


def room_update_parts(room: Room) -> dict[str, int | str]:
    """The room as it is now, for a ``room.update``: its state. Each process renders the
    parts its sockets need from it (``RoomUpdate.fragments``), once."""
    state = room_state(room)
    # Serialised once here: a string is cheap for the channel layer to copy or pack for every
    # socket of the room.
    return {"revision": state.revision, "state_json": json.dumps(state.as_json())}


def _send_message(message_pk: int) -> None:
    message = Message.objects.select_related("sender").get(pk=message_pk)
    msg = message_state(message)
    payload = {
        "type": "room.message",
        "html": plain(rendering.message_added_html(msg)),
        "event": {"type": "message.onReceived", "message": rendering.message_json(msg)},
    }
    _group_send(room_group(message.room_id), payload)


async def broadcast_reaction(room_pk: int, *, user_id: str, emoji: str) -> None:
    """An emoji reaction to every socket of the room, now (nothing stored, no commit to
    wait for: it is sent from the socket's own loop)."""
    payload = {"type": "room.reaction", "userID": user_id, "emoji": emoji}
    await _layer().group_send(room_group(room_pk), payload)


def _group_send(group: str, payload: dict) -> None:
    if _server_loop_gone(group):
        return
    async_to_sync(_layer().group_send)(group, payload)


def _channel_send(channel_name: str, payload: dict) -> None:
    if _server_loop_gone(channel_name):
        return
    async_to_sync(_layer().send)(channel_name, payload)


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS is configured in settings"
    return layer


def _server_loop_gone(to: str) -> bool:
    """``async_to_sync`` runs the send on the server's event loop and waits: once that loop
    has stopped (the process is exiting) it would wait forever, and the process with it.
    Nobody is left to receive it in this process; other processes repair from the database
    (``rooms.presence``, the room's revision)."""
    if lifecycle.loop_stopped():
        log.warning("not sent to %s: the server's event loop has stopped", to)
        return True
    return False
