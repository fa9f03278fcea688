"""Every action a room socket accepts, declared once: its wire name, its arguments (wire
camelCase, parsed into the handler's snake_case keywords), who may run it, whether it
touches the database, and its handler. Dispatch, the argument checks, the table in
docs/protocol.md (a test compares them) and the SDK's list of calls all come from here.

Rules are the services' (``rooms.services``): a handler only names the acting member and
passes the arguments on. ``permission`` says who the service lets through, for the docs and
the SDK; the services enforce it for every entry point, and a test checks each declared host
action against an audience member.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import events, protocol, services
from rooms.media.sei import Sei
from rooms.protocol import ProtocolError
from rooms.selectors import room_state
from rooms.services.mediafiles import allowed_extensions, media_source

if TYPE_CHECKING:
    from rooms.realtime.consumer import RoomConsumer


class Permission(StrEnum):
    ANYONE = "anyone"  # any member in the room
    HOST_PERMISSIONS = "H"  # the host, or a co-host while no host is online
    HOST = "Host"  # the host only
    MEDIA = "control role"  # config.mediaPlayer.rolesCanControl (the host's config)


@dataclass(frozen=True)
class Arg:
    wire: str
    parse: protocol.Parser
    required: bool = False

    @property
    def keyword(self) -> str:
        return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", self.wire).lower()


@dataclass(frozen=True)
class Action:
    name: str
    args: tuple[Arg, ...]
    permission: Permission
    db: bool  # a plain handler that touches the database: run in a thread
    handler: Callable[..., Any]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        """The handler's keywords from a frame's fields; unknown fields are ignored (htmx
        adds its own), a missing or ill-typed one is an error."""
        keywords = {}
        for arg in self.args:
            if arg.wire in data:
                keywords[arg.keyword] = arg.parse(data[arg.wire], arg.wire)
            elif arg.required:
                raise ProtocolError(f"'{self.name}' needs '{arg.wire}'.")
        return keywords


ACTIONS: dict[str, Action] = {}


def action(
    *names: str,
    args: tuple[Arg, ...] = (),
    permission: Permission = Permission.ANYONE,
    db: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a handler under one or more wire names (the seed has aliases)."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            assert name not in ACTIONS, f"{name} declared twice"
            ACTIONS[name] = Action(name, args, permission, db, handler)
        return handler

    return register


def need(wire: str, parse: protocol.Parser) -> Arg:
    return Arg(wire, parse, required=True)


def may(wire: str, parse: protocol.Parser) -> Arg:
    return Arg(wire, parse)


INDEX = need("index", protocol.integer)
USER = need("userID", protocol.identifier)
H = Permission.HOST_PERMISSIONS

# Handlers get the socket (its member, room, media link and timers) and the parsed keywords.


@action("ping", db=False)
def ping(socket: RoomConsumer) -> None:
    return None


# --- seats ------------------------------------------------------------------------------------


@action("seat.take", "seat.audience.take", args=(INDEX,))
def seat_take(socket: RoomConsumer, *, index: int) -> dict:
    return {"index": services.seat_take(member=socket.me, index=index).index}


@action("seat.leave", "seat.speaker.leave")
def seat_leave(socket: RoomConsumer) -> None:
    services.seat_leave(member=socket.me)


@action("seat.host.close", args=(may("targetIndex", protocol.integer),), permission=H)
def seat_close(socket: RoomConsumer, *, target_index: int = -1) -> dict:
    return {"indexes": _set_locked(socket, target_index, locked=True)}


@action("seat.host.open", args=(may("targetIndex", protocol.integer),), permission=H)
def seat_open(socket: RoomConsumer, *, target_index: int = -1) -> dict:
    return {"indexes": _set_locked(socket, target_index, locked=False)}


def _set_locked(socket: RoomConsumer, index: int, *, locked: bool) -> list[int]:
    return services.seat_set_locked(room=socket.room, actor=socket.me, index=index, locked=locked)


MUTED = may("muted", protocol.boolean)


@action("seat.host.mute", args=(need("targetIndex", protocol.integer), MUTED), permission=H)
def seat_host_mute(socket: RoomConsumer, *, target_index: int, muted: bool = True) -> dict:
    user_id = services.seat_host_mute(
        room=socket.room, actor=socket.me, index=target_index, muted=muted
    )
    return {"userID": user_id}


@action("seat.host.muteByUserID", args=(USER, MUTED), permission=H)
def seat_host_mute_user(socket: RoomConsumer, *, user_id: str, muted: bool = True) -> None:
    services.microphone_turn_on(member=socket.me, is_on=not muted, user_id=user_id)


@action("seat.host.muteAll", permission=H)
def seat_host_mute_all(socket: RoomConsumer) -> dict:
    """Every seated microphone off but the host's own: one change, one event per seat."""
    return {"mutedUserIDs": services.seat_host_mute_all(room=socket.room, actor=socket.me)}


@action("seat.host.removeSpeaker", args=(USER,), permission=H)
def seat_remove_speaker(socket: RoomConsumer, *, user_id: str) -> None:
    services.seat_remove_speaker(actor=socket.me, user_id=user_id)


@action(
    "seat.host.setCoHost",
    args=(USER, may("isCoHost", protocol.boolean)),
    permission=Permission.HOST,
)
def seat_set_cohost(socket: RoomConsumer, *, user_id: str, is_co_host: bool = True) -> None:
    services.cohost_set(actor=socket.me, user_id=user_id, is_cohost=is_co_host)


@action("seat.muteLocally", args=(need("targetIndex", protocol.integer), MUTED), db=False)
async def seat_mute_locally(socket: RoomConsumer, *, target_index: int, muted: bool = True) -> dict:
    user_id = await socket.in_thread(services.seat_user_id, room=socket.room, index=target_index)
    if user_id is None:
        raise services.ServiceError("seat_empty", f"Nobody is on seat {target_index}.")
    return {"mutedUserIDs": socket.media.mute_locally(user_id, muted)}


@action("seat.muteLocallyByUserID", args=(USER, MUTED), db=False)
def seat_mute_user_locally(socket: RoomConsumer, *, user_id: str, muted: bool = True) -> dict:
    """Only what this user hears changes; nothing is stored, nobody else is told."""
    return {"mutedUserIDs": socket.media.mute_locally(user_id, muted)}


# --- requests and invitations -----------------------------------------------------------------


@action("seat.audience.applyToTake", args=(may("index", protocol.integer),), db=False)
async def seat_apply(socket: RoomConsumer, *, index: int | None = None) -> None:
    await socket.in_thread(services.seat_request_apply, member=socket.me, index=index)
    _expire_tickets_later(socket)


@action("seat.host.inviteToTake", args=(USER,), permission=H, db=False)
async def seat_invite(socket: RoomConsumer, *, user_id: str) -> None:
    await socket.in_thread(services.seat_invite, actor=socket.me, user_id=user_id)
    _expire_tickets_later(socket)


def _expire_tickets_later(socket: RoomConsumer) -> None:
    """Requests and invitations time out even if nobody touches the room meanwhile."""
    delay = settings.LIVEAUDIO_SEAT_TICKET_SECONDS + 0.1
    socket.timers.after(delay, services.seat_tickets_expire, room=socket.room)


@action("seat.audience.cancelTakingRequest")
def seat_request_cancel(socket: RoomConsumer) -> None:
    services.seat_request_cancel(member=socket.me)


@action("seat.audience.acceptTakingInvitation")
def seat_invitation_accept(socket: RoomConsumer) -> dict:
    return {"index": services.seat_invitation_accept(member=socket.me).index}


@action("seat.audience.rejectTakingInvitation")
def seat_invitation_reject(socket: RoomConsumer) -> None:
    services.seat_invitation_reject(member=socket.me)


@action("seat.host.acceptTakingRequest", args=(USER,), permission=H)
def seat_request_accept(socket: RoomConsumer, *, user_id: str) -> dict:
    return {"index": services.seat_request_accept(actor=socket.me, user_id=user_id).index}


@action("seat.host.rejectTakingRequest", args=(USER,), permission=H)
def seat_request_reject(socket: RoomConsumer, *, user_id: str) -> None:
    services.seat_request_reject(actor=socket.me, user_id=user_id)


# --- reads of the seed's seat controller, answered from the current state ----------------------


@action("seat.getEmptySeats", args=(may("includeHostSeats", protocol.boolean),))
def seat_empty_seats(socket: RoomConsumer, *, include_host_seats: bool = False) -> list[int]:
    return [
        seat.index
        for row in room_state(socket.room).rows
        for seat in row
        if seat.user_id is None and (include_host_seats or not seat.is_host_seat)
    ]


@action("seat.getUserByIndex", args=(INDEX,))
def seat_user_by_index(socket: RoomConsumer, *, index: int) -> dict | None:
    rows = room_state(socket.room).rows
    seat = next((s for row in rows for s in row if s.index == index), None)
    if seat is None:
        raise services.ServiceError("seat_out_of_range", f"There is no seat {index}.")
    return {"id": seat.user_id, "name": seat.user_name} if seat.user_id else None


@action("seat.getSeatIndexByUserID", args=(USER,))
def seat_index_of(socket: RoomConsumer, *, user_id: str) -> int:
    member = room_state(socket.room).member(user_id)
    return member.seat_index if member and member.seat_index is not None else -1


@action("seat.userMap")
def seat_user_map(socket: RoomConsumer) -> dict[str, str]:
    rows = room_state(socket.room).rows
    return {str(s.index): s.user_id for row in rows for s in row if s.user_id}


# --- microphone -------------------------------------------------------------------------------


@action(
    "microphone.turnOn", args=(need("isOn", protocol.boolean), may("userID", protocol.identifier))
)
def microphone_turn_on(socket: RoomConsumer, *, is_on: bool, user_id: str | None = None) -> None:
    services.microphone_turn_on(member=socket.me, is_on=is_on, user_id=user_id)


@action("microphone.switchState", args=(may("userID", protocol.identifier),))
def microphone_switch(socket: RoomConsumer, *, user_id: str | None = None) -> None:
    services.microphone_switch(member=socket.me, user_id=user_id)


# --- room life and moderation -----------------------------------------------------------------


@action("room.leave", db=False)
async def room_leave(socket: RoomConsumer) -> None:
    await socket.leave()


@action("room.setTopic", args=(need("topic", protocol.for_the_service),), permission=H)
def room_set_topic(socket: RoomConsumer, *, topic: object) -> dict:
    return {"topic": services.room_set_topic(actor=socket.me, topic=topic)}


@action("room.end", permission=H)
def room_end(socket: RoomConsumer) -> None:
    services.room_end(room=socket.room, by=socket.me)


@action("member.kick", args=(USER,), permission=H)
def member_kick(socket: RoomConsumer, *, user_id: str) -> None:
    services.member_kick_by_user_id(actor=socket.me, user_id=user_id)


@action("member.ban", args=(USER,), permission=H)
def member_ban(socket: RoomConsumer, *, user_id: str) -> None:
    services.member_kick_by_user_id(actor=socket.me, user_id=user_id, ban=True)


# --- chat and media ---------------------------------------------------------------------------


@action(
    "message.send",
    args=(need("message", protocol.message_text), may("attributes", protocol.json_object)),
)
def message_send(socket: RoomConsumer, *, message: str, attributes: dict | None = None) -> dict:
    sent = services.message_send(member=socket.me, text=message, attributes=attributes)
    return {"messageID": sent.pk}


@action("rtc.offer", args=(need("sdp", protocol.sdp),), db=False)
async def rtc_offer(socket: RoomConsumer, *, sdp: str) -> dict:
    if len(sdp) > settings.LIVEAUDIO_SDP_MAX_CHARS:
        raise ProtocolError("The offer is too large.")
    return {"type": "answer", "sdp": await socket.media.offer(sdp)}


@action(
    "audioVideo.sendSEI",
    args=(
        need("data", protocol.json_object),
        may("streamType", protocol.stream_type),
        may("captureMs", protocol.number),
    ),
    db=False,
)
async def sei_send(
    socket: RoomConsumer, *, data: dict, stream_type: str = "main", capture_ms: float | None = None
) -> bool:
    """Not stored; the others get it as ``sei`` frames, released with the sender's audio
    captured at ``captureMs`` (the sender's wall clock, ms since the epoch: ``rooms.media.sei``)."""
    if not socket.sei_rate.allow():
        limit = settings.LIVEAUDIO_SEI_PER_SECOND
        raise services.ServiceError(
            "sei_rate_limited", f"At most {limit} SEIs a second; slow down."
        )
    text = services.sei_text(data)
    member, media = socket.me, socket.media
    if stream_type == "main" and member.user_id not in media.audible:
        await media.refresh_audible()
    check = functools.partial(
        services.sei_check_sender,
        member=member,
        stream_type=stream_type,
        audible=media.audible,
        media_playing=media.media_playing,
    )
    if stream_type == "media":
        await socket.in_thread(check)  # reads the room's rolesCanControl
    else:
        check()
    media.send_sei(Sei(member.user_id, stream_type, text), capture_ms)
    return True


@action("reaction.send", args=(need("emoji", protocol.reaction),), db=False)
async def reaction_send(socket: RoomConsumer, *, emoji: str) -> bool:
    """A short burst over the sender's avatar on every page of the room; nothing stored."""
    if not socket.view.config["reactions"]["enabled"]:
        raise services.ServiceError("reactions_off", "Reactions are turned off here.")
    if not socket.reaction_rate.allow():
        limit = settings.LIVEAUDIO_REACTIONS_PER_SECOND
        raise services.ServiceError(
            "reaction_rate_limited", f"At most {limit} reactions a second; slow down."
        )
    await events.broadcast_reaction(socket.room.pk, user_id=socket.me.user_id, emoji=emoji)
    return True


# --- room properties ----------------------------------------------------------------------

ROOM_ID = need("roomID", protocol.identifier)
FORCE = may("isForce", protocol.boolean)
PROPERTY_OPTIONS = (
    FORCE,
    may("isDeleteAfterOwnerLeft", protocol.boolean),
    may("isUpdateOwner", protocol.boolean),
)


@action(
    "room.updateProperty",
    args=(
        ROOM_ID,
        need("key", protocol.for_the_service),
        need("value", protocol.for_the_service),
        *PROPERTY_OPTIONS,
    ),
)
def room_update_property(socket: RoomConsumer, *, room_id: str, **change: Any) -> dict:
    done = services.property_update(member=socket.me, room_id=room_id, **change)
    return {"roomID": room_id, "setProperties": done}


@action(
    "room.updateProperties",
    args=(ROOM_ID, need("roomProperties", protocol.for_the_service), *PROPERTY_OPTIONS),
)
def room_update_properties(
    socket: RoomConsumer, *, room_id: str, room_properties: Any, **options: bool
) -> dict:
    done = services.properties_update(
        member=socket.me, room_id=room_id, properties=room_properties, **options
    )
    return {"roomID": room_id, "setProperties": done}


@action("room.deleteProperties", args=(ROOM_ID, need("keys", protocol.for_the_service), FORCE))
def room_delete_properties(socket: RoomConsumer, *, room_id: str, **change: Any) -> dict:
    done = services.properties_delete(member=socket.me, room_id=room_id, **change)
    return {"roomID": room_id, "deleteProperties": done}


@action("room.queryProperties", args=(ROOM_ID,))
def room_query_properties(socket: RoomConsumer, *, room_id: str) -> dict:
    properties = services.properties_query(member=socket.me, room_id=room_id)
    return {"roomID": room_id, "properties": properties}


@action("room.sendCommand", args=(ROOM_ID, need("command", protocol.base64_bytes)), db=False)
async def room_send_command(socket: RoomConsumer, *, room_id: str, command: bytes) -> dict:
    """Not stored; the others get it as ``room.commands``, the sender only this reply. The
    rate is the sender's, across their sockets (``services.sender_rate``)."""
    return await socket.in_thread(
        services.command_send, member=socket.me, room_id=room_id, command=command
    )


# --- the media player -------------------------------------------------------------------------

MEDIA = Permission.MEDIA


@action(
    "media.play",
    args=(need("filePathOrURL", protocol.media_source), may("enableRepeat", protocol.boolean)),
    permission=MEDIA,
    db=False,
)
async def media_play(
    socket: RoomConsumer, *, file_path_or_url: str, enable_repeat: bool = False
) -> dict:
    """A URL is fetched and probed first: on a thread of its own, not the one the sockets'
    queries share, since a download may take a while."""
    media = await database_sync_to_async(media_source, thread_sensitive=False)(
        room=socket.room,
        actor=socket.me,
        source=file_path_or_url,
        allowed=allowed_extensions(socket.view.config),
    )
    await socket.in_thread(
        services.media_play, room=socket.room, actor=socket.me, media=media, repeat=enable_repeat
    )
    return {}


@action("media.pause", permission=MEDIA)
def media_pause(socket: RoomConsumer) -> dict:
    services.media_pause(room=socket.room, actor=socket.me)
    return {}


@action("media.resume", permission=MEDIA)
def media_resume(socket: RoomConsumer) -> dict:
    services.media_resume(room=socket.room, actor=socket.me)
    return {}


@action("media.stop", permission=MEDIA)
def media_stop(socket: RoomConsumer) -> dict:
    services.media_stop(room=socket.room, actor=socket.me)
    return {}


@action("media.destroy", permission=MEDIA)
def media_destroy(socket: RoomConsumer) -> dict:
    services.media_stop(room=socket.room, actor=socket.me, destroy=True)
    return {}


@action("media.seekTo", args=(need("millisecond", protocol.integer),), permission=MEDIA)
def media_seek(socket: RoomConsumer, *, millisecond: int) -> dict:
    services.media_seek(room=socket.room, actor=socket.me, millisecond=millisecond)
    return {}


@action("media.setVolume", args=(need("volume", protocol.integer),), permission=MEDIA)
def media_set_volume(socket: RoomConsumer, *, volume: int) -> dict:
    services.media_set_volume(room=socket.room, actor=socket.me, volume=volume)
    return {}


@action("media.muteLocal", args=(need("mute", protocol.boolean),), db=False)
async def media_mute_local(socket: RoomConsumer, *, mute: bool) -> dict:
    """Only what this socket hears: nothing is stored, nobody else is told."""
    await socket.send_frame(socket.media.mute_media(mute))
    return {"mute": mute}


def find(name: str, request_id: str | None = None) -> Action:
    found = ACTIONS.get(name)
    if found is None:
        raise ProtocolError(f"Unknown action {name[:80]!r}.", request_id)
    return found
