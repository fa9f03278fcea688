"""The HTML renderings of room state. Templates escape everything; no HTML is built here."""

from __future__ import annotations

import functools
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.urls import reverse

from rooms.config import preset
from rooms.models import Room
from rooms.protocol import REACTIONS
from rooms.selectors import MEMBER_QUERY_MAX_CHARS, MemberCursor, MessageState, RoomState

# Every change re-sends the member list to every page: past this many, the list shows the
# people on seats first and counts the rest, so an update stays small in a big room. The
# rest are read a page at a time by whoever wants them (rooms/member_list.py).
MEMBER_LIST_MAX = 60
LISTENERS_SHOWN = 24  # the audience's avatars under the stage; the rest are a count


# What the shared parts look like without a config of one's own (every default is the same
# for every role).
DEFAULT_CONFIG = preset("audience")

ALIGN_CSS = {
    "start": "flex-start",
    "end": "flex-end",
    "center": "center",
    "spaceBetween": "space-between",
    "spaceAround": "space-around",
    "spaceEvenly": "space-evenly",
}


def room_parts_html(
    state: RoomState, *, oob: bool = True, parts: dict[str, Any] | None = None
) -> str:
    """Seat grid and member list, swapped out-of-band into every page of the room."""
    return render_to_string(
        "rooms/partials/room_parts.html", room_parts_context(state, oob=oob, parts=parts)
    )


class Fragment:
    """One part of the shared HTML, swapped on its own: ``key`` is what it shows (equal keys,
    equal HTML), so a socket sends it only when its key differs from the one it sent last.
    Rendered when first asked for, once."""

    def __init__(self, key: object, template: str | None, context: dict) -> None:
        self.key = key
        self._template, self._context = template, context

    @functools.cached_property
    def html(self) -> str:
        if self._template is None:
            return ""
        return render_to_string(f"rooms/partials/{self._template}.html", self._context)


def room_fragments(state: RoomState, *, parts: dict[str, Any] | None = None) -> dict[str, Fragment]:
    """The shared parts as fragments: the stage, the member list, their counts, the topic.
    A join into a big room changes only the counts: its update is a few hundred bytes,
    whatever the room's size (issue 14)."""
    context = room_parts_context(state, oob=True, parts=parts)
    shown = tuple(context["listeners_shown"])
    keys = {
        "seats": (
            tuple(tuple(row) for row in state.rows),
            shown,
            bool(context["listeners_count"]),
            bool(context["listeners_more"]),
        ),
        "listeners_count": context["listeners_count"],
        "listeners_more": context["listeners_more"],
        "members": (tuple(context["members_shown"]), bool(context["members_more"])),
        "members_count": context["members_count"],
        "members_more": context["members_more"],
        "topic": state.topic,
    }
    templates = {
        "seats": "seats_part",
        "listeners_count": "listeners_count",
        "listeners_more": "listeners_more",
        "members": "members_part",
        "members_count": "members_count",
        "members_more": "members_more",
        "topic": "topic",
    }
    # No "and N more" line: its part (whose key changes with it) leaves it out.
    absent = {name for name in keys if name.endswith("_more") and not keys[name]}
    return {
        name: Fragment(key, None if name in absent else templates[name], context)
        for name, key in keys.items()
    }


def room_parts_context(
    state: RoomState, *, oob: bool = False, parts: dict[str, Any] | None = None
) -> dict:
    """``parts``: what a config changes in these parts (``parts_view``); default: nothing."""
    options = parts or DEFAULT_PARTS_VIEW
    hidden = set(options["hiddenUsers"])
    listed = [m for m in state.members if m.user_id not in hidden]
    seated_first = sorted(listed, key=lambda m: m.seat_index is None)
    shown = seated_first[:MEMBER_LIST_MAX]
    listeners = [m for m in listed if m.seat_index is None and m.online]
    page_url = member_page_url(state.app_id, state.room_id)
    return {
        "listeners_shown": listeners[:LISTENERS_SHOWN],
        "listeners_count": len(listeners),
        "listeners_more": max(0, len(listeners) - LISTENERS_SHOWN),
        "stage_empty": not any(seat.user_id for row in state.rows for seat in row),
        "state": state,
        "oob": oob,
        "members_shown": shown,
        "members_count": len(listed),
        "members_more": len(listed) - len(shown),
        # Past the first page: the search box, and "Show more" from its last row on.
        "member_page_url": page_url,
        "members_next_url": member_page_url(
            state.app_id, state.room_id, after=MemberCursor.after_member(shown[-1])
        )
        if len(listed) > len(shown)
        else None,
        "member_query_max": MEMBER_QUERY_MAX_CHARS,
        "text": options["innerText"],
        "avatar_url": options["avatarURL"],
        "show_mic_state": options["showMicrophoneState"],
    }


def member_page_url(
    app_id: int, room_id: str, *, after: MemberCursor | None = None, query: str = ""
) -> str:
    """Where a page of the member list is read (rooms/member_list.py)."""
    url = reverse("member_page", args=[app_id, room_id])
    params = {name: value for name, value in (("q", query), ("after", str(after or ""))) if value}
    return f"{url}?{urlencode(params)}" if params else url


def parts_view(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a config that changes the seat grid and member list."""
    return {
        "innerText": config["innerText"],
        "avatarURL": config["seat"]["avatarURL"],
        "hiddenUsers": config["memberList"]["hiddenUsers"],
        "showMicrophoneState": config["memberList"]["showMicrophoneState"],
    }


DEFAULT_PARTS_VIEW = parts_view(DEFAULT_CONFIG)


def page_context(config: dict[str, Any], *, room: Room) -> dict[str, Any]:
    """What the full page takes from the config: classes, row styles, images, texts."""
    seat, rows = config["seat"], config["seat"]["layout"]["rowConfigs"]
    style = [f"--row-spacing: {seat['layout']['rowSpacing']}px"]
    for number, row in enumerate(rows, start=1):
        style.append(f"--row-{number}-align: {ALIGN_CSS[row['alignment']]}")
        style.append(f"--row-{number}-gap: {row['seatSpacing']}px")
    chat = config["inRoomMessage"]
    classes = {
        "no-sound-wave": not seat["showSoundWaveInAudioMode"],
        "chat-hidden": not chat["visible"],
        "chat-no-names": not chat["showName"],
        "chat-no-avatars": not chat["showAvatar"],
        "chat-no-input": not config["bottomMenuBar"]["showInRoomMessageButton"],
        "no-mic-state": not config["memberList"]["showMicrophoneState"],
        "has-background": bool(config["background"]["imageURL"]),
    }
    return {
        "config": config,
        "text": config["innerText"],
        "room_style": "; ".join(style),
        "room_classes": " ".join(name for name, on in classes.items() if on),
        "background_url": config["background"]["imageURL"],
        "show_timer": config["duration"]["isVisible"],
        "started_at_ms": int(room.created_at.timestamp() * 1000),
    }


def personal_html_from(context: dict) -> str:
    """What is this user's own: the bottom bar, the host's queue, an invitation to answer."""
    return render_to_string("rooms/partials/personal.html", {"bar": context, "oob": True})


def personal_context(
    state: RoomState,
    user_id: str,
    config: dict[str, Any] | None = None,
    *,
    full_state: RoomState | None = None,
) -> dict:
    """``state`` is already ``seen_by(user_id)``; ``config`` picks the buttons and texts;
    ``full_state`` (unfiltered) gives a raised hand its place in the host's queue."""
    config = config or DEFAULT_CONFIG
    invitation = next((i for i in state.invitations if i.user_id == user_id), None)
    queue = [r.user_id for r in (full_state or state).requests]
    queue_position = queue.index(user_id) + 1 if user_id in queue else None
    me = state.member(user_id)
    is_host = state.has_host_permissions(user_id)
    seated = bool(me and me.seat_index is not None)
    bar = config["bottomMenuBar"]
    if is_host:
        buttons = bar["hostButtons"]
    else:
        buttons = bar["speakerButtons"] if seated else bar["audienceButtons"]
    return {
        "me": me,
        "is_host": is_host,
        "is_the_host": bool(me and me.role == "host"),
        "seated": seated,
        "all_locked": all(seat.locked for row in state.rows for seat in row),
        "requested": any(r.user_id == user_id for r in state.requests),
        "requests": state.requests,
        "invitation": invitation,
        "inviter_name": _inviter_name(full_state or state, invitation),
        "queue_position": queue_position,
        "invited": {i.user_id for i in state.invitations},
        "live": state.live,
        "buttons": frozenset(buttons),
        "text": config["innerText"],
        "role_text": role_text(config["innerText"], me.role if me else "audience"),
        "reactions": REACTIONS if config["reactions"]["enabled"] else (),
        "leave_dialog": config["confirmDialogInfo"],
        "end_dialog": config["endConfirmDialogInfo"],
    }


def _inviter_name(state: RoomState, invitation: Any) -> str:
    """Who invited (the seed's invitation names its inviter), else the host in general."""
    inviter = state.member(invitation.inviter_id) if invitation and invitation.inviter_id else None
    return inviter.user_name if inviter else "The host"


ROLE_TEXT = {
    "host": "memberListRoleHost",
    "cohost": "memberListRoleCoHost",
    "speaker": "memberListRoleSpeaker",
    "audience": "memberListRoleAudience",
}


def role_text(texts: dict[str, str], role: str) -> str:
    return texts[ROLE_TEXT.get(role, "memberListRoleAudience")]


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
