"""One websocket per participant: authenticate, parse, call a service, answer.

Frames to the client are either HTML (htmx's ws extension swaps them out-of-band) or JSON
objects with a ``type`` (the page's script and the embed SDK read those).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from rooms import rendering, services
from rooms.events import room_group, send_session_replaced
from rooms.media import MediaError
from rooms.models import App, Member, Room
from rooms.protocol import Command, ProtocolError, parse_command
from rooms.rtc import audible_user_ids, media_hub
from rooms.selectors import RoomState, recent_messages, room_state
from rooms.tokens import TokenError, token_verify

log = logging.getLogger(__name__)

# Close codes a client can act on (4000-4999 are the application's own).
CLOSE_ROOM_NOT_FOUND = 4006
CLOSE_BANNED = 4005
CLOSE_REPLACED = 4009
CLOSE_KICKED = 4010
CLOSE_ROOM_ENDED = 4011

# Grace-period timers outlive the consumer that started them; hold them so they are not
# garbage-collected mid-sleep.
_grace_tasks: set[asyncio.Task] = set()


class RoomConsumer(AsyncWebsocketConsumer):
    member: Member | None = None
    room: Room | None = None
    user_id: str = ""
    local_mutes: frozenset[str] = frozenset()
    _unsubscribe_levels: Callable[[], None] | None = None
    _levels_were_silent = True

    async def connect(self) -> None:
        # Accept first: a refusal is then a close code and a readable error event,
        # not a bare HTTP 403 the browser cannot explain.
        await self.accept()
        self._recent: deque[float] = deque()
        try:
            app, room = await self._load_room()
            claims = token_verify(token=self._token(), app=app, room_id=room.room_id)
        except TokenError as exc:
            await self._refuse(exc.code, exc.message, exc.close_code)
            return
        except (App.DoesNotExist, Room.DoesNotExist, ValueError):
            await self._refuse("room_not_found", "There is no such room.", CLOSE_ROOM_NOT_FOUND)
            return
        self.room = room
        await self.channel_layer.group_add(room_group(room.pk), self.channel_name)
        try:
            joined = await database_sync_to_async(services.member_join)(
                room=room, claims=claims, channel_name=self.channel_name
            )
        except services.ServiceError as exc:
            await self.channel_layer.group_discard(room_group(room.pk), self.channel_name)
            code = CLOSE_BANNED if exc.code == "banned" else CLOSE_ROOM_ENDED
            self.room = None
            await self._refuse(exc.code, exc.message, code)
            return
        self.member, self.user_id = joined.member, claims.user_id
        if joined.replaced_channel:
            await database_sync_to_async(send_session_replaced)(joined.replaced_channel)
        hub = media_hub()
        hub.cancel_release(room.pk, self.user_id)  # back within the grace period: same peer
        self._unsubscribe_levels = hub.subscribe_levels(room.pk, self._on_levels)
        await self._send_welcome()

    async def disconnect(self, code: int) -> None:
        if self.room is None:
            return
        await self.channel_layer.group_discard(room_group(self.room.pk), self.channel_name)
        if self._unsubscribe_levels is not None:
            self._unsubscribe_levels()
        if self.member is not None:
            await database_sync_to_async(services.member_disconnect)(
                member=self.member, channel_name=self.channel_name
            )
            # The audio goes on while the socket reconnects; the peer closes with the seat.
            media_hub().release_later(
                self.room.pk, self.user_id, settings.LIVEAUDIO_SEAT_GRACE_SECONDS
            )
            task = asyncio.create_task(_release_after_grace(self.room))
            _grace_tasks.add(task)
            task.add_done_callback(_grace_tasks.discard)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.member is None:
            return
        request_id = None
        try:
            if text_data is not None and len(text_data) > settings.LIVEAUDIO_SOCKET_MAX_BYTES:
                raise ProtocolError("Message too large.")
            command = parse_command(text_data)
            request_id = command.request_id
            self._check_rate()
            result = await self._dispatch(command)
        except ProtocolError as exc:
            await self._send_error(exc.code, exc.message, exc.request_id or request_id)
        except services.ServiceError as exc:
            await self._send_error(exc.code, exc.message, request_id)
        except Exception:
            log.exception("socket action failed")
            await self._send_error("internal_error", "Something went wrong.", request_id)
        else:
            await self._send_json(
                {"type": "reply", "requestID": request_id, "ok": True, "data": result}
            )

    def _check_rate(self) -> None:
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 10:
            self._recent.popleft()
        if len(self._recent) >= settings.LIVEAUDIO_SOCKET_MESSAGES_PER_10S:
            raise ProtocolError("Too many messages; slow down.")
        self._recent.append(now)

    async def _dispatch(self, command: Command) -> Any:
        media_handler = self._media_handlers().get(command.action)
        if media_handler is not None:
            return await media_handler(**command.args)
        handler = self._handlers()[command.action]
        return await database_sync_to_async(handler)(**command.args)

    def _media_handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "rtc.offer": self._rtc_offer,
            "seat.muteLocally": self._mute_seat_locally,
            "seat.muteLocallyByUserID": self._mute_user_locally,
        }

    async def _rtc_offer(self, sdp: str) -> dict:
        if len(sdp) > settings.LIVEAUDIO_SDP_MAX_CHARS:
            raise ProtocolError("The offer is too large.")
        hub = media_hub()
        try:
            answer = await hub.offer(self.room.pk, self.user_id, sdp)
        except MediaError as exc:
            raise services.ServiceError(f"media_{exc.code}", exc.message) from exc
        state = await database_sync_to_async(room_state)(self.room)
        hub.set_audible(self.room.pk, audible_user_ids(state))
        hub.set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return {"type": "answer", "sdp": answer}

    async def _mute_seat_locally(self, targetIndex: int, muted: bool = True) -> dict:  # noqa: N803
        user_id = await database_sync_to_async(services.seat_user_id)(
            room=self.room, index=targetIndex
        )
        if user_id is None:
            raise services.ServiceError("seat_empty", f"Nobody is on seat {targetIndex}.")
        return await self._mute_user_locally(user_id, muted)

    async def _mute_user_locally(self, userID: str, muted: bool = True) -> dict:  # noqa: N803
        """Only what this user hears changes; nothing is stored, nobody else is told."""
        self.local_mutes = self.local_mutes | {userID} if muted else self.local_mutes - {userID}
        media_hub().set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return {"mutedUserIDs": sorted(self.local_mutes)}

    def _handlers(self) -> dict[str, Callable[..., Any]]:
        member, room = self.member, self.room

        def take(index: int) -> dict:
            return {"index": services.seat_take(member=member, index=index).index}

        def lock(locked: bool) -> Callable[..., dict]:
            def run(targetIndex: int = -1) -> dict:  # noqa: N803 - the seed's name
                changed = services.seat_set_locked(
                    room=room, actor=member, index=targetIndex, locked=locked
                )
                return {"indexes": changed}

            return run

        return {
            "ping": lambda: None,
            "seat.take": take,
            "seat.leave": lambda: services.seat_leave(member=member),
            "seat.host.close": lock(True),
            "seat.host.open": lock(False),
            "microphone.turnOn": lambda isOn: services.microphone_turn_on(
                member=member, is_on=isOn
            ),
            "seat.host.mute": lambda targetIndex, muted=True: {
                "userID": services.seat_host_mute(
                    room=room, actor=member, index=targetIndex, muted=muted
                )
            },
            "message.send": lambda message, attributes=None: {
                "messageID": services.message_send(
                    member=member, text=message, attributes=attributes
                ).pk
            },
        }

    # --- messages from the channel layer -----------------------------------------------------

    async def room_update(self, event: dict) -> None:
        state = RoomState.from_json(event["state"])
        media_hub().set_audible(self.room.pk, audible_user_ids(state))
        await self.send(text_data=event["html"] + rendering.bottom_bar_html(state, self._uid()))
        await self._send_json(
            {"type": "room.update", "state": event["state"], "events": event["events"]}
        )

    async def room_message(self, event: dict) -> None:
        await self.send(text_data=event["html"])
        await self._send_json(event["event"])

    async def room_ended(self, event: dict) -> None:
        self.member = None  # everyone is already offline in the database
        await media_hub().release(self.room.pk, self.user_id)
        await self._end(event["reason"], "The room has ended.", CLOSE_ROOM_ENDED)

    async def member_removed(self, event: dict) -> None:
        self.member = None  # already offline in the database; nothing to release
        await media_hub().release(self.room.pk, self.user_id)
        await self._end(event["reason"], "You were removed from the room.", CLOSE_KICKED)

    def _on_levels(self, levels: dict[str, float]) -> None:
        """Called on the mixer clock (~8/s): never block it; skip frames of steady silence."""
        silent = not any(levels.values())
        if silent and self._levels_were_silent:
            return
        self._levels_were_silent = silent
        frame = {"type": "levels", "levels": {uid: round(v, 3) for uid, v in levels.items()}}
        asyncio.ensure_future(self._send_json(frame))

    async def session_replaced(self, event: dict) -> None:
        self.member = None  # the newer tab owns the member now
        await self._refuse(
            "session_replaced", "You joined this room from another tab.", CLOSE_REPLACED
        )

    # --- helpers -----------------------------------------------------------------------------

    async def _load_room(self) -> tuple[App, Room]:
        kwargs = self.scope["url_route"]["kwargs"]

        def load() -> tuple[App, Room]:
            app = App.objects.get(app_id=int(kwargs["app_id"]))
            return app, Room.objects.select_related("app").get(app=app, room_id=kwargs["room_id"])

        return await database_sync_to_async(load)()

    def _token(self) -> str | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return (query.get("token") or [None])[0]

    async def _send_welcome(self) -> None:
        def snapshot() -> tuple[RoomState, list]:
            return room_state(self.room), recent_messages(self.room)

        state, messages = await database_sync_to_async(snapshot)()
        html = (
            rendering.room_parts_html(state)
            + rendering.bottom_bar_html(state, self._uid())
            + rendering.chat_html(messages)
        )
        await self.send(text_data=html)
        await self._send_json(
            {
                "type": "room.joined",
                "userID": self._uid(),
                "state": state.as_json(),
                "messages": [rendering.message_json(m) for m in messages],
            }
        )

    async def _end(self, reason: str, text: str, close_code: int) -> None:
        await self.send(text_data=rendering.toast_html(text))
        await self._send_json({"type": "onEnded", "reason": reason})
        await self.close(code=close_code)

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self._send_error(code, message)
        await self.close(code=close_code)

    async def _send_error(self, code: str, message: str, request_id: str | None = None) -> None:
        await self.send(text_data=rendering.toast_html(message))
        await self._send_json(
            {"type": "error", "code": code, "message": message, "requestID": request_id}
        )

    async def _send_json(self, data: dict) -> None:
        await self.send(text_data=json.dumps(data))

    def _uid(self) -> str:
        return self.user_id


async def _release_after_grace(room: Room) -> None:
    await asyncio.sleep(settings.LIVEAUDIO_SEAT_GRACE_SECONDS + 0.05)
    await database_sync_to_async(services.seats_release_stale)(room=room)
