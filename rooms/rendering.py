"""The HTML renderings of room state. Templates escape everything; no HTML is built here."""

from __future__ import annotations

from dataclasses import asdict

from django.template.loader import render_to_string

from rooms.selectors import MessageState, RoomState

# Every change re-sends the member list to every page: past this many, the list shows the
# people on seats first and counts the rest, so an update stays small in a big room.
MEMBER_LIST_MAX = 60


def room_parts_html(state: RoomState, *, oob: bool = True) -> str:
    """Seat grid and member list, swapped out-of-band into every page of the room."""
    return render_to_string("rooms/partials/room_parts.html", room_parts_context(state, oob=oob))


def room_parts_context(state: RoomState, *, oob: bool = False) -> dict:
    seated_first = sorted(state.members, key=lambda m: m.seat_index is None)
    shown = seated_first[:MEMBER_LIST_MAX]
    return {
        "state": state,
        "oob": oob,
        "members_shown": shown,
        "members_more": len(state.members) - len(shown),
    }


def personal_html_from(context: dict) -> str:
    """What is this user's own: the bottom bar, the host's queue, an invitation to answer."""
    return render_to_string("rooms/partials/personal.html", {"bar": context, "oob": True})


def personal_context(state: RoomState, user_id: str) -> dict:
    """``state`` is already ``seen_by(user_id)``."""
    me = state.member(user_id)
    return {
        "me": me,
        "is_host": state.has_host_permissions(user_id),
        "is_the_host": bool(me and me.role == "host"),
        "seated": bool(me and me.seat_index is not None),
        "all_locked": all(seat.locked for row in state.rows for seat in row),
        "requested": any(r.user_id == user_id for r in state.requests),
        "requests": state.requests,
        "invitation": next((i for i in state.invitations if i.user_id == user_id), None),
        "invited": {i.user_id for i in state.invitations},
        "live": state.live,
    }


def chat_html(messages: list[MessageState]) -> str:
    return render_to_string(
        "rooms/partials/chat_messages.html", {"messages": messages, "oob": True}
    )


def message_added_html(message: MessageState) -> str:
    return render_to_string("rooms/partials/message_added.html", {"message": message})


def message_removed_html(message_id: int) -> str:
    return render_to_string("rooms/partials/message_removed.html", {"message_id": message_id})


def toast_html(text: str) -> str:
    return render_to_string("rooms/partials/toast.html", {"text": text})


def message_json(message: MessageState) -> dict:
    """A message as the seed's ZegoInRoomMessage: messageID, user, message, timestamp..."""
    data = asdict(message)
    return {
        "messageID": data["message_id"],
        "user": {"id": data["user_id"], "name": data["user_name"]},
        "message": data["text"],
        "attributes": data["attributes"],
        "timestamp": data["timestamp"],
        "state": "success",
    }
