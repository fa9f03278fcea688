"""In-room messages."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from rooms import events
from rooms.models import Member, Message, Room
from rooms.services.common import ServiceError, active_member, lock_room
from rooms.text import InvalidText, check_json, clean_text

MAX_ATTRIBUTES_CHARS = 8 * 1024  # as compact JSON
MAX_ATTRIBUTES_DEPTH = 8


def _checked_text(text: object) -> str:
    if not isinstance(text, str):
        raise ServiceError("invalid_text", "A message must be text.")
    text = text.strip()
    limit = settings.LIVEAUDIO_MESSAGE_MAX_CHARS
    if not text:
        raise ServiceError("message_empty", "A message cannot be empty.")
    if len(text) > limit:
        raise ServiceError("message_too_long", f"A message is at most {limit} characters.")
    try:
        return clean_text(text, name="A message", max_chars=limit, multiline=True)
    except InvalidText as exc:
        raise ServiceError(exc.code, exc.message) from exc


def _checked_attributes(attributes: object) -> dict:
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ServiceError("invalid_text", "A message's attributes must be an object.")
    try:
        check_json(
            attributes,
            name="attributes",
            max_depth=MAX_ATTRIBUTES_DEPTH,
            max_chars=MAX_ATTRIBUTES_CHARS,
        )
    except InvalidText as exc:
        raise ServiceError(exc.code, exc.message) from exc
    return attributes


def message_send(*, member: Member, text: str, attributes: dict | None = None) -> Message:
    text = _checked_text(text)
    attributes = _checked_attributes(attributes)
    with transaction.atomic():
        member = active_member(member)
        message = Message.objects.create(
            room=member.room, sender=member, text=text, attributes=attributes
        )
        events.broadcast_message_sent(message)
    return message


def message_send_system(*, room: Room, text: str) -> Message:
    """A message from the operator or the integrator's backend, shown as from "System"."""
    text = _checked_text(text)
    with transaction.atomic():
        lock_room(room)  # refuses an ended room
        message = Message.objects.create(room=room, sender=None, text=text)
        events.broadcast_message_sent(message)
    return message


def message_delete(*, message: Message) -> None:
    """Hide a message from everyone's view; the row stays for the record."""
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, deleted=False).update(deleted=True)
        if updated:
            events.broadcast_message_deleted(message)
