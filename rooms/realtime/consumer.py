"""One websocket per participant: admit, join, then parse, call a handler, answer.

Frames to the client are either HTML (htmx's ws extension swaps them out-of-band) or JSON
objects with a ``type`` (the page's script and the embed SDK read those). Who may join is
``admission``; the actions are ``actions``; what goes out when is ``outbox``; the socket's
part in the media plane is ``media_link``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from rooms import lifecycle, rendering, services
from rooms.events import room_group, send_session_replaced, user_group
from rooms.models import Member, Role, Room
from rooms.protocol import ProtocolError, parse_frame
from rooms.realtime import actions, admission, watch
from rooms.realtime.close_codes import close_code_for
from rooms.realtime.commands import CommandStream
from rooms.realtime.limits import FrameBudget, PerSecond, Verdict
from rooms.realtime.media_link import MediaLink, media_mute_frame
from rooms.realtime.outbox import Outbox, RoomUpdate
from rooms.realtime.timers import RoomTimers
from rooms.realtime.view import SocketView
from rooms.rtc import audible_user_ids
from rooms.selectors import recent_messages, room_state
from rooms.tokens import TokenError

log = logging.getLogger(__name__)
T = TypeVar("T")


class RoomConsumer(AsyncWebsocketConsumer):
    member: Member | None = None
    room: Room  # set once admitted; until then `member` is None and nothing is handled
    user_id = ""
    _groups: tuple[str, ...] = ()
    _expiry: asyncio.Task[None] | None = None
    _close_after_reply = False
    _gone = False  # disconnect() ran
    _unregister_restart: Callable[[], None] | None = None

    async def connect(self) -> None:
        if not await self.in_thread(admission.origin_known, self.scope):
            await self.close()  # before the handshake: HTTP 403
            return
        # Accept first: a refusal is then a close code and a readable error event,
        # not a bare HTTP 403 the browser cannot explain.
        await self.accept()
        self.budget = FrameBudget(settings.LIVEAUDIO_SOCKET_MESSAGES_PER_10S)
        self.sei_rate = PerSecond(settings.LIVEAUDIO_SEI_PER_SECOND)
        self.reaction_rate = PerSecond(settings.LIVEAUDIO_REACTIONS_PER_SECOND)
        try:
            admitted = await self.in_thread(admission.admit, self.scope)
            self.room, self.user_id = admitted.room, admitted.claims.user_id
            self.outbox = Outbox(user_id=self.user_id, present=self._present)
            self.view = SocketView(self.user_id, admitted.config)
            self._groups = (room_group(self.room.pk), user_group(self.room.pk, self.user_id))
            for group in self._groups:
                await self.channel_layer.group_add(group, self.channel_name)
            joined = await self.in_thread(
                services.member_join,
                room=self.room,
                claims=admitted.claims,
                channel_name=self.channel_name,
                options=admitted.options,
            )
        except (services.ServiceError, TokenError, ProtocolError) as exc:
            await self._leave_groups()
            await self._refuse(exc.code, exc.message, close_code_for(exc.code))
            return
        self.member = joined.member
        if joined.replaced_channel:
            await self.in_thread(send_session_replaced, joined.replaced_channel)
        self.timers = RoomTimers.of(self.room.pk)
        self.media = MediaLink(self.room, self.user_id, self._send_text)
        self.media.attach()
        await self._send_welcome()
        watch.follow(self)
        self._unregister_restart = lifecycle.on_restart(self._server_restarting)
        for notice in joined.notices:
            await self._send_error(notice["code"], notice["message"])
        self._start_background_media(admitted.options)
        self._expiry = asyncio.create_task(self._expire_at(admitted.expires_at))

    def _start_background_media(self, options: services.JoinOptions) -> None:
        """config.backgroundMedia of a host's config: started once the host is in."""
        if options.background_media is None or self.member is None:
            return
        if self.member.role != Role.HOST:
            return
        path, repeat = options.background_media
        self.timers.after(
            0,
            services.media_background_start,
            slow=True,
            room=self.room,
            member=self.member,
            path=path,
            repeat=repeat,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._gone:
                # The consumer failed before its socket said goodbye (the channel layer went
                # down under it): the user is gone all the same.
                try:
                    await self.disconnect(1011)
                except Exception:
                    log.exception("a failed socket's disconnect failed")

    async def disconnect(self, code: int) -> None:
        self._gone = True
        if self._expiry is not None:
            self._expiry.cancel()
        watch.forget(self)
        if self._unregister_restart is not None:
            self._unregister_restart()
        if hasattr(self, "outbox"):
            self.outbox.close()
        if hasattr(self, "commands"):
            self.commands.close()
        await self._leave_groups()
        if self.member is None:
            if hasattr(self, "media"):
                self.media.detach(release_after=None)
            return
        await self.in_thread(
            services.member_disconnect, member=self.member, channel_name=self.channel_name
        )
        grace = settings.LIVEAUDIO_SEAT_GRACE_SECONDS
        self.media.detach(release_after=grace)
        self.timers.after(grace + 0.05, services.seats_release_stale, room=self.room)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.member is None:
            return
        verdict = self.budget.spend()
        if verdict is Verdict.IGNORE:
            return
        if verdict is Verdict.CLOSE:
            await self._refuse(
                "too_many_messages", "Too many messages.", close_code_for("too_many_messages")
            )
            return
        request_id = None
        try:
            if text_data is not None and len(text_data) > settings.LIVEAUDIO_SOCKET_MAX_BYTES:
                raise ProtocolError("Message too large.")
            frame = parse_frame(text_data)
            request_id = frame.request_id
            if verdict is Verdict.REFUSE:
                raise ProtocolError("Too many messages; slow down.")
            declared = actions.find(frame.action, request_id)
            result = await self._run(declared, declared.arguments(frame.data))
        except ProtocolError as exc:
            await self._send_error(exc.code, exc.message, exc.request_id or request_id)
        except services.ServiceError as exc:
            await self._send_error(exc.code, exc.message, request_id)
        except Exception:
            log.exception("socket action failed")
            await self._send_error("internal_error", "Something went wrong.", request_id)
        else:
            await self.outbox.drained()
            await self._send_json(
                {"type": "reply", "requestID": request_id, "ok": True, "data": result}
            )
            if self._close_after_reply:
                await self._send_json({"type": "onEnded", "reason": "localLeave"})
                await self.close(code=1000)

    @property
    def me(self) -> Member:
        """The acting member, for handlers (which run only while the user is in the room)."""
        if self.member is None:
            raise services.ServiceError("not_permitted", "You are not in this room.")
        return self.member

    async def _run(self, declared: actions.Action, arguments: dict[str, Any]) -> Any:
        if declared.is_async:
            return await declared.handler(self, **arguments)
        if declared.db:
            return await self.in_thread(declared.handler, self, **arguments)
        return declared.handler(self, **arguments)

    async def in_thread(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await database_sync_to_async(function)(*args, **kwargs)

    async def leave(self) -> None:
        """``room.leave``: the reply first, then ``onEnded`` and a normal close."""
        await self.in_thread(services.member_leave, member=self.me)
        self.member = None
        await self.media.release()
        self._close_after_reply = True

    # --- messages from the channel layer -----------------------------------------------------

    # Channels closes stale database connections before every handler: a hop to a worker
    # thread and back. These handlers touch no database in the loop (whatever does goes
    # through database_sync_to_async, which closes them itself), and they come N at a time:
    # a join in a room of N sockets made N hops, 40 % of daphne for a minute after 500 joins
    # (py-spy).
    NO_DATABASE = frozenset(
        {"room.update", "room.notice", "room.command", "room.reaction", "room.message"}
    )

    async def dispatch(self, message: dict) -> None:
        if message["type"] in self.NO_DATABASE:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    async def room_update(self, message: dict) -> None:
        self.outbox.room_update(message)

    async def room_notice(self, message: dict) -> None:
        self.outbox.notice(message["events"])

    async def room_command(self, message: dict) -> None:
        if hasattr(self, "commands"):  # after the welcome (and the room's orderKey then)
            self.commands.received(message["message"])

    async def room_reaction(self, message: dict) -> None:
        if self.member is not None and self.view.config["reactions"]["enabled"]:
            await self._send_json(
                {"type": "reaction", "userID": message["userID"], "emoji": message["emoji"]}
            )

    async def room_message(self, message: dict) -> None:
        await self.outbox.drained()
        await self._send_text(message["html"])
        await self._send_json(message["event"])

    async def room_ended(self, message: dict) -> None:
        self.member = None  # everyone is already offline in the database
        RoomTimers.room_ended(self.room.pk)
        await self.media.release()
        await self._end(message["reason"], "The room has ended.", close_code_for("room_ended"))

    async def member_removed(self, message: dict) -> None:
        self.member = None  # already offline in the database; nothing to release
        await self.media.release()
        banned = bool(message.get("banned"))
        text = "You were banned from this room." if banned else "You were removed from the room."
        await self._end(message["reason"], text, close_code_for("kicked"), banned=banned)

    async def session_replaced(self, message: dict) -> None:
        self.member = None  # the newer tab owns the member now
        await self._refuse(
            "session_replaced",
            "You joined this room from another tab.",
            close_code_for("session_replaced"),
        )

    async def _server_restarting(self) -> None:
        """The process is going down (or was taken for dead): the page reconnects."""
        await self._refuse(
            "server_restarting",
            "The server is restarting; reconnecting.",
            close_code_for("server_restarting"),
        )

    # --- frames --------------------------------------------------------------------------------

    async def _present(self, update: RoomUpdate | None, events: list[dict]) -> None:
        if update is None:
            await self._send_text(self.view.events(events))
            return
        self.media.set_audible(update.audible, update.revision, seated=update.seated)
        await self.media.show_playback(update.state.media)
        for frame in self.view.update(update, events):
            await self._send_text(frame)

    async def _send_welcome(self) -> None:
        def snapshot() -> tuple[Any, list, int]:
            return (
                room_state(self.room),
                recent_messages(self.room),
                services.command_order(self.room),
            )

        state, messages, command_order = await self.in_thread(snapshot)
        self.commands = CommandStream(
            user_id=self.user_id, after=command_order, send=self._send_json
        )
        self.outbox.shown(state.revision)
        self.media.audible = frozenset(audible_user_ids(state))
        for frame in self.view.welcome(state, messages):
            await self._send_text(frame)
        await self._send_text(media_mute_frame(self.media.media_muted))
        await self.media.show_playback(state.media)

    async def _expire_at(self, expires_at: Any) -> None:
        """The token (or the session made from it) ends while connected: say so and close."""
        await asyncio.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()))
        if self.member is None:
            return
        await self._send_error("token_expired", "Your token has expired; join again.")
        await self._send_json({"type": "onEnded", "reason": "tokenExpired"})
        await self.close(code=close_code_for("token_expired_while_connected"))

    async def _end(self, reason: str, text: str, close_code: int, *, banned: bool = False) -> None:
        await self.outbox.drained()
        await self._send_text(rendering.toast_html(text))
        # The seed's reason (a ban is a kickOut there); `banned` tells the page it is for good.
        await self._send_json(
            {"type": "onEnded", "reason": reason, **({"banned": True} if banned else {})}
        )
        await self.close(code=close_code)

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self._send_error(code, message)
        await self.close(code=close_code)

    async def _send_error(self, code: str, message: str, request_id: str | None = None) -> None:
        if hasattr(self, "outbox"):
            await self.outbox.drained()
        await self._send_text(rendering.toast_html(message))
        await self._send_json(
            {"type": "error", "code": code, "message": message, "requestID": request_id}
        )

    async def send_frame(self, text: str) -> None:
        """A frame of a handler's own (``media.mute``), before its reply."""
        await self._send_text(text)

    async def _send_json(self, data: dict) -> None:
        await self._send_text(json.dumps(data))

    async def _send_text(self, text: str) -> None:
        with contextlib.suppress(Disconnected):  # the socket closed first: nobody to tell
            await self.send(text_data=text)

    async def _leave_groups(self) -> None:
        groups, self._groups = self._groups, ()
        for group in groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:  # the channel layer is down: the group expires by itself
                log.warning("leaving %s failed: %r", group, exc)
