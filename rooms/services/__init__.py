"""Every write and every rule of a room. Entry points (socket, admin, views) call these.

Each function runs in one transaction and queues its events with ``transaction.on_commit``,
so nobody is told of a change that did not happen. Permission checks live here, so the
socket, admin and (later) the HTTP API get the same rules.
"""

from __future__ import annotations

from rooms.services.chat import message_delete, message_send, message_send_system
from rooms.services.commands import command_order, command_send, command_send_by_api
from rooms.services.common import NotPermitted, ServiceError
from rooms.services.embed import (
    EmbedRefused,
    SessionRequest,
    embed_session_create,
    embed_session_verify,
    session_claims,
    token_expires_at,
)
from rooms.services.media import (
    media_pause,
    media_play,
    media_resume,
    media_seek,
    media_set_volume,
    media_stop,
)
from rooms.services.mediafiles import media_background_start
from rooms.services.members import (
    JoinOptions,
    JoinResult,
    cohost_set,
    member_ban,
    member_disconnect,
    member_join,
    member_kick,
    member_kick_by_user_id,
    member_leave,
    member_unban,
    room_end,
    seats_release_stale,
)
from rooms.services.properties import (
    properties_delete,
    properties_delete_by_api,
    properties_query,
    properties_set_by_api,
    properties_update,
    property_update,
    room_properties,
)
from rooms.services.requests import (
    seat_invitation_accept,
    seat_invitation_reject,
    seat_invite,
    seat_request_accept,
    seat_request_apply,
    seat_request_cancel,
    seat_request_reject,
    seat_tickets_expire,
)
from rooms.services.rooms import room_create, room_set_topic
from rooms.services.seats import (
    microphone_switch,
    microphone_turn_on,
    seat_clear,
    seat_host_mute,
    seat_host_mute_all,
    seat_leave,
    seat_remove_speaker,
    seat_set_locked,
    seat_take,
    seat_user_id,
)
from rooms.services.sei import sei_check_sender, sei_text

__all__ = [
    "EmbedRefused",
    "SessionRequest",
    "embed_session_create",
    "embed_session_verify",
    "session_claims",
    "token_expires_at",
    "JoinOptions",
    "JoinResult",
    "NotPermitted",
    "ServiceError",
    "cohost_set",
    "command_order",
    "command_send",
    "command_send_by_api",
    "member_ban",
    "member_disconnect",
    "member_join",
    "member_kick",
    "member_kick_by_user_id",
    "member_leave",
    "member_unban",
    "media_background_start",
    "sei_check_sender",
    "sei_text",
    "media_pause",
    "media_play",
    "media_resume",
    "media_seek",
    "media_set_volume",
    "media_stop",
    "message_delete",
    "message_send",
    "message_send_system",
    "microphone_switch",
    "microphone_turn_on",
    "properties_delete",
    "properties_delete_by_api",
    "properties_query",
    "properties_set_by_api",
    "properties_update",
    "property_update",
    "room_create",
    "room_set_topic",
    "room_end",
    "room_properties",
    "seat_clear",
    "seat_host_mute",
    "seat_host_mute_all",
    "seat_invitation_accept",
    "seat_invitation_reject",
    "seat_invite",
    "seat_leave",
    "seat_remove_speaker",
    "seat_request_accept",
    "seat_request_apply",
    "seat_request_cancel",
    "seat_request_reject",
    "seat_set_locked",
    "seat_take",
    "seat_tickets_expire",
    "seat_user_id",
    "seats_release_stale",
]
