"""One websocket per participant: authenticate, parse, call a service, answer.

Frames to the client are either HTML (htmx's ws extension swaps them out-of-band) or JSON
objects with a ``type`` (the page's script and the embed SDK read those).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from rooms import config as room_config
from rooms import rendering, services
from rooms.events import room_group, send_session_replaced
from rooms.media import MediaError
from rooms.models import App, Member, Room
from rooms.protocol import Command, ProtocolError, parse_command, parse_join_options
from rooms.rtc import audible_user_ids, media_hub
from rooms.selectors import RoomState, recent_messages, room_state
from rooms.tokens import TokenClaims, TokenError, token_verify

log = logging.getLogger(__name__)
db = database_sync_to_async

# Close codes a client can act on (4000-4999 are the application's own).
CLOSE_BANNED = 4005
CLOSE_ROOM_NOT_FOUND = 4006
CLOSE_BAD_OPTIONS = 4007
CLOSE_REPLACED = 4009
CLOSE_KICKED = 4010
CLOSE_ROOM_ENDED = 4011
CLOSE_TOKEN_EXPIRED = 4012
# At most one room update frame per socket this often; a burst in between is merged.
UPDATE_INTERVAL = 0.1

# Timers outlive the consumer that started them; hold them so they are not collected.
_timers: set[asyncio.Task] = set()


def _after(delay: float, function: Callable[..., Any], **kwargs: Any) -> None:
    async def run() -> None:
        await asyncio.sleep(delay)
        await db(function)(**kwargs)

    task = asyncio.create_task(run())
    _timers.add(task)
    task.add_done_callback(_timers.discard)


@functools.lru_cache(maxsize=8)
def _parsed_update(state_json: str) -> tuple[dict, RoomState, frozenset[str]]:
    """One room update, parsed once per process, not once per socket: every socket of a
    room gets the same `state_json` (the same string object, in memory), and a join in a
    room of N sockets would otherwise parse the whole state N times. Read-only results."""
    data = json.loads(state_json)
    state = RoomState.from_json(data)
    return data, state, frozenset(audible_user_ids(state))


class RoomConsumer(AsyncWebsocketConsumer):
    member: Member | None = None
    room: Room | None = None
    user_id: str = ""
    local_mutes: frozenset[str] = frozenset()
    _unsubscribe_levels: Callable[[], None] | None = None
    _unsubscribe_peer: Callable[[], None] | None = None
    _levels_sent: str | None = None  # the last levels frame this socket got
    _close_after_reply = False
    _personal: dict | None = None
    _expiry: asyncio.Task | None = None
    # The joiner's config (the embed session's, or its role's preset) and, when it changes
    # the shared seat grid and member list, its own view of those.
    config: dict = rendering.DEFAULT_CONFIG
    _parts_json: str | None = None
    _revision = 0  # of the newest room state sent to this socket
    _state_json = "null"  # that state, as sent
    _update_flush: asyncio.Task | None = None
    _update_sent_at = -UPDATE_INTERVAL

    async def connect(self) -> None:
        # Accept first: a refusal is then a close code and a readable error event,
        # not a bare HTTP 403 the browser cannot explain.
        await self.accept()
        self._recent: deque[float] = deque()
        self._updates: list[dict] = []  # room updates not sent yet (see room_update)
        try:
            app, room = await self._load_room()
            claims, options, expires_at = await self._admit(app, room)
        except TokenError as exc:
            await self._refuse(exc.code, exc.message, exc.close_code)
            return
        except ProtocolError as exc:
            await self._refuse(exc.code, exc.message, CLOSE_BAD_OPTIONS)
            return
        except (App.DoesNotExist, Room.DoesNotExist, ValueError):
            await self._refuse("room_not_found", "There is no such room.", CLOSE_ROOM_NOT_FOUND)
            return
        self.room = room
        await self.channel_layer.group_add(room_group(room.pk), self.channel_name)
        try:
            joined = await db(services.member_join)(
                room=room, claims=claims, channel_name=self.channel_name, options=options
            )
        except services.ServiceError as exc:
            await self.channel_layer.group_discard(room_group(room.pk), self.channel_name)
            code = CLOSE_BANNED if exc.code == "banned" else CLOSE_ROOM_ENDED
            self.room = None
            await self._refuse(exc.code, exc.message, code)
            return
        self.member, self.user_id = joined.member, claims.user_id
        if joined.replaced_channel:
            await db(send_session_replaced)(joined.replaced_channel)
        hub = media_hub()
        hub.cancel_release(room.pk, self.user_id)  # back within the grace period: same peer
        self._unsubscribe_levels = hub.subscribe_levels(room.pk, self._on_levels)
        self._unsubscribe_peer = hub.subscribe_peer_closed(room.pk, self._on_peer_closed)
        await self._send_welcome()
        for notice in joined.notices:
            await self._send_error(notice["code"], notice["message"])
        self._expiry = asyncio.create_task(self._expire_at(expires_at))

    async def _admit(
        self, app: App, room: Room
    ) -> tuple[TokenClaims, services.JoinOptions, datetime]:
        """Who joins, with which options, until when: from an embed session or a token."""
        query = self._query()
        if "session" in query:
            session = await db(services.embed_session_verify)(
                key=query["session"], app=app, room_id=room.room_id
            )
            unknown = sorted(set(query) - {"session"})
            if unknown:  # the session's config holds the join options
                raise ProtocolError(f"Unknown join option(s): {', '.join(unknown)}.")
            self._use_config(session.config)
            options = services.JoinOptions(**room_config.join_options(session.config))
            return services.session_claims(session), options, session.expires_at
        claims = token_verify(token=query.get("token"), app=app, room_id=room.room_id)
        options = services.JoinOptions(**_join_options(query))
        self._use_config(room_config.preset(options.role))
        return claims, options, services.token_expires_at(query["token"])

    def _use_config(self, config: dict) -> None:
        self.config = config
        parts = rendering.parts_view(config)
        if parts != rendering.DEFAULT_PARTS_VIEW:
            self._parts_json = json.dumps(parts, sort_keys=True)

    async def _expire_at(self, expires_at: datetime) -> None:
        """The token (or the session made from it) ends while connected: say so and close."""
        await asyncio.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()))
        if self.member is None:
            return
        await self._send_error("token_expired", "Your token has expired; join again.")
        await self._send_json({"type": "onEnded", "reason": "tokenExpired"})
        await self.close(code=CLOSE_TOKEN_EXPIRED)

    async def disconnect(self, code: int) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._update_flush is not None:
            self._update_flush.cancel()
        if self.room is None:
            return
        await self.channel_layer.group_discard(room_group(self.room.pk), self.channel_name)
        if self._unsubscribe_levels is not None:
            self._unsubscribe_levels()
        if self._unsubscribe_peer is not None:
            self._unsubscribe_peer()
        if self.member is not None:
            await db(services.member_disconnect)(member=self.member, channel_name=self.channel_name)
            grace = settings.LIVEAUDIO_SEAT_GRACE_SECONDS
            # The audio goes on while the socket reconnects; the peer closes with the seat.
            media_hub().release_later(self.room.pk, self.user_id, grace)
            _after(grace + 0.05, services.seats_release_stale, room=self.room)

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
            await self._sent_updates()
            await self._send_json(
                {"type": "reply", "requestID": request_id, "ok": True, "data": result}
            )
            if self._close_after_reply:
                await self._send_json({"type": "onEnded", "reason": "localLeave"})
                await self.close(code=1000)

    def _check_rate(self) -> None:
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 10:
            self._recent.popleft()
        if len(self._recent) >= settings.LIVEAUDIO_SOCKET_MESSAGES_PER_10S:
            raise ProtocolError("Too many messages; slow down.")
        self._recent.append(now)

    # --- actions -----------------------------------------------------------------------------

    async def _dispatch(self, command: Command) -> Any:
        handler = self._async_handlers().get(command.action)
        if handler is not None:
            return await handler(**command.args)
        return await db(self._sync_handlers()[command.action])(**command.args)

    def _sync_handlers(self) -> dict[str, Callable[..., Any]]:
        """Actions that are one service call each (run in a thread: they touch the database)."""
        me, room = self.member, self.room

        def take(index: int) -> dict:
            return {"index": services.seat_take(member=me, index=index).index}

        def lock(locked: bool) -> Callable[..., dict]:
            def run(targetIndex: int = -1) -> dict:  # noqa: N803 - the seed's names
                changed = services.seat_set_locked(
                    room=room, actor=me, index=targetIndex, locked=locked
                )
                return {"indexes": changed}

            return run

        return {
            "ping": lambda: None,
            "seat.take": take,
            "seat.audience.take": take,
            "seat.leave": lambda: services.seat_leave(member=me),
            "seat.speaker.leave": lambda: services.seat_leave(member=me),
            "seat.host.close": lock(True),
            "seat.host.open": lock(False),
            "seat.host.mute": lambda targetIndex, muted=True: {
                "userID": services.seat_host_mute(
                    room=room, actor=me, index=targetIndex, muted=muted
                )
            },
            "seat.host.muteByUserID": lambda userID, muted=True: services.microphone_turn_on(
                member=me, is_on=not muted, user_id=userID
            ),
            "seat.host.removeSpeaker": lambda userID: services.seat_remove_speaker(
                actor=me, user_id=userID
            ),
            "seat.host.setCoHost": lambda userID, isCoHost=True: services.cohost_set(
                actor=me, user_id=userID, is_cohost=isCoHost
            ),
            "seat.audience.cancelTakingRequest": lambda: services.seat_request_cancel(member=me),
            "seat.audience.acceptTakingInvitation": lambda: {
                "index": services.seat_invitation_accept(member=me).index
            },
            "seat.audience.rejectTakingInvitation": lambda: services.seat_invitation_reject(
                member=me
            ),
            "seat.host.acceptTakingRequest": lambda userID: {
                "index": services.seat_request_accept(actor=me, user_id=userID).index
            },
            "seat.host.rejectTakingRequest": lambda userID: services.seat_request_reject(
                actor=me, user_id=userID
            ),
            "microphone.turnOn": lambda isOn, userID=None: services.microphone_turn_on(
                member=me, is_on=isOn, user_id=userID
            ),
            "microphone.switchState": lambda userID=None: services.microphone_switch(
                member=me, user_id=userID
            ),
            "room.end": lambda: services.room_end(room=room, by=me),
            "member.kick": lambda userID: services.member_kick_by_user_id(actor=me, user_id=userID),
            "member.ban": lambda userID: services.member_kick_by_user_id(
                actor=me, user_id=userID, ban=True
            ),
            "message.send": lambda message, attributes=None: {
                "messageID": services.message_send(
                    member=me, text=message, attributes=attributes
                ).pk
            },
        }

    def _async_handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "rtc.offer": self._rtc_offer,
            "seat.muteLocally": self._mute_seat_locally,
            "seat.muteLocallyByUserID": self._mute_user_locally,
            "room.leave": self._leave,
            "seat.audience.applyToTake": self._apply_to_take,
            "seat.host.inviteToTake": self._invite_to_take,
            "seat.getEmptySeats": self._empty_seats,
            "seat.getUserByIndex": self._user_by_index,
            "seat.getSeatIndexByUserID": self._seat_index_of,
            "seat.userMap": self._user_map,
        }

    async def _apply_to_take(self, index: int | None = None) -> None:
        await db(services.seat_request_apply)(member=self.member, index=index)
        self._expire_tickets_later()

    async def _invite_to_take(self, userID: str) -> None:  # noqa: N803
        await db(services.seat_invite)(actor=self.member, user_id=userID)
        self._expire_tickets_later()

    def _expire_tickets_later(self) -> None:
        """Requests and invitations time out even if nobody touches the room meanwhile."""
        _after(
            settings.LIVEAUDIO_SEAT_TICKET_SECONDS + 0.1,
            services.seat_tickets_expire,
            room=self.room,
        )

    async def _leave(self) -> None:
        await db(services.member_leave)(member=self.member)
        self.member = None
        await media_hub().release(self.room.pk, self.user_id)
        self._close_after_reply = True  # the reply first, then onEnded and a normal close

    async def _rtc_offer(self, sdp: str) -> dict:
        if len(sdp) > settings.LIVEAUDIO_SDP_MAX_CHARS:
            raise ProtocolError("The offer is too large.")
        hub = media_hub()
        try:
            answer = await hub.offer(self.room.pk, self.user_id, sdp)
        except MediaError as exc:
            raise services.ServiceError(f"media_{exc.code}", exc.message) from exc
        state = await db(room_state)(self.room)
        hub.set_audible(self.room.pk, audible_user_ids(state), state.revision)
        hub.set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return {"type": "answer", "sdp": answer}

    async def _mute_seat_locally(self, targetIndex: int, muted: bool = True) -> dict:  # noqa: N803
        user_id = await db(services.seat_user_id)(room=self.room, index=targetIndex)
        if user_id is None:
            raise services.ServiceError("seat_empty", f"Nobody is on seat {targetIndex}.")
        return await self._mute_user_locally(user_id, muted)

    async def _mute_user_locally(self, userID: str, muted: bool = True) -> dict:  # noqa: N803
        """Only what this user hears changes; nothing is stored, nobody else is told."""
        self.local_mutes = self.local_mutes | {userID} if muted else self.local_mutes - {userID}
        media_hub().set_local_mutes(self.room.pk, self.user_id, self.local_mutes)
        return {"mutedUserIDs": sorted(self.local_mutes)}

    # Reads of the seed's seat controller, answered from the current state.

    async def _state(self) -> RoomState:
        return await db(room_state)(self.room)

    async def _empty_seats(self, includeHostSeats: bool = False) -> list[int]:  # noqa: N803
        state = await self._state()
        return [
            s.index
            for row in state.rows
            for s in row
            if s.user_id is None and (includeHostSeats or not s.is_host_seat)
        ]

    async def _user_by_index(self, index: int) -> dict | None:
        seat = next(
            (s for row in (await self._state()).rows for s in row if s.index == index), None
        )
        if seat is None:
            raise services.ServiceError("seat_out_of_range", f"There is no seat {index}.")
        return {"id": seat.user_id, "name": seat.user_name} if seat.user_id else None

    async def _seat_index_of(self, userID: str) -> int:  # noqa: N803
        member = (await self._state()).member(userID)
        return member.seat_index if member and member.seat_index is not None else -1

    async def _user_map(self) -> dict[str, str]:
        state = await self._state()
        return {str(s.index): s.user_id for row in state.rows for s in row if s.user_id}

    # --- messages from the channel layer -----------------------------------------------------

    async def room_update(self, event: dict) -> None:
        """Queued, and sent by one task: at most one update frame per UPDATE_INTERVAL, so
        updates that come in a burst (a join storm brings one per joiner, each with the
        whole room) go out as one frame with all their events and the newest state. A
        lone update goes out at once."""
        self._updates.append(event)
        if self._update_flush is None:
            self._update_flush = asyncio.create_task(self._flush_updates())

    async def _flush_updates(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._updates:
                wait = self._update_sent_at + UPDATE_INTERVAL - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch, self._updates = self._updates, []
                await self._send_updates(batch)
                self._update_sent_at = loop.time()
        except Exception as exc:  # the socket closed meanwhile, most likely
            log.warning("a room update was not sent: %r", exc)
        finally:
            self._update_flush = None

    async def _sent_updates(self) -> None:
        """Before any other frame: the updates that came before it go out first."""
        if self._update_flush is not None:
            await self._update_flush

    async def _send_updates(self, batch: list[dict]) -> None:
        mine: list[dict] = []  # every update's events, each addressed by its own state
        newest: tuple[dict, tuple[dict, RoomState, frozenset[str]]] | None = None
        for candidate in batch:
            parsed = _parsed_update(candidate["state_json"])
            mine += [
                _strip(e) for e in candidate["events"] if _addressed_to(e, parsed[1], self.user_id)
            ]
            if newest is None or parsed[1].revision >= newest[1][1].revision:
                newest = (candidate, parsed)
        assert newest is not None
        event, (data, state, audible) = newest
        if state.revision < self._revision:
            # Read before a state this socket has already sent (queued while it joined, or
            # late from another server process): the events still go out, with the state
            # the page has; the older room is not shown, nor given to the mixer.
            if mine:
                await self._send_update_frame(self._state_json, mine)
            return
        self._revision = state.revision
        media_hub().set_audible(self.room.pk, audible, state.revision)
        seen = state.seen_by(self.user_id)
        shared = event["html"]
        if self._parts_json is not None:
            shared = rendering.room_parts_html_for(event["state_json"], self._parts_json)
        await self.send(text_data=shared + self._personal_html_if_changed(seen))
        state_json = event["state_json"] if seen is state else json.dumps(seen.json_over(data))
        await self._send_update_frame(state_json, mine)

    async def _send_update_frame(self, state_json: str, events: list[dict]) -> None:
        self._state_json = state_json
        # Spliced rather than re-encoded: the state is most of the frame.
        frame = f'{{"type": "room.update", "state": {state_json}, "events": {json.dumps(events)}}}'
        await self.send(text_data=frame)

    def _personal_html_if_changed(self, seen: RoomState) -> str:
        """Most updates (someone joins, someone speaks) change nothing of this user's own
        parts: skip rendering them, which keeps a busy room's update cost linear."""
        context = rendering.personal_context(seen, self.user_id, self.config)
        if context == self._personal:
            return ""
        self._personal = context
        return rendering.personal_html_from(context)

    async def room_message(self, event: dict) -> None:
        await self._sent_updates()
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

    async def session_replaced(self, event: dict) -> None:
        self.member = None  # the newer tab owns the member now
        await self._refuse(
            "session_replaced", "You joined this room from another tab.", CLOSE_REPLACED
        )

    def _on_levels(self, levels: dict[str, float]) -> None:
        """Called ~8 times a second: never block. A frame goes out only when what the page
        shows changes, so a steady ring, like steady silence, costs no frames."""
        text = _levels_frame(levels)
        if text == self._levels_sent or (self._levels_sent is None and not any(levels.values())):
            return
        self._levels_sent = text
        _send_soon(self.send(text_data=text))

    def _on_peer_closed(self, user_id: str, reason: str) -> None:
        """The server closed this user's media connection on its own: say so, so the page
        offers again instead of waiting for its own side to notice."""
        if user_id != self.user_id:
            return
        message = {
            "timeout": "The audio connection did not complete in time.",
            "failed": "The audio connection was lost.",
        }.get(reason, "The audio connection closed.")
        frame = {"type": "rtc.closed", "reason": reason, "message": message}
        _send_soon(self._send_json(frame))

    # --- helpers -----------------------------------------------------------------------------

    async def _load_room(self) -> tuple[App, Room]:
        kwargs = self.scope["url_route"]["kwargs"]

        def load() -> tuple[App, Room]:
            app = App.objects.get(app_id=int(kwargs["app_id"]))
            return app, Room.objects.select_related("app").get(app=app, room_id=kwargs["room_id"])

        return await db(load)()

    def _query(self) -> dict[str, str]:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return {name: values[0] for name, values in query.items()}

    async def _send_welcome(self) -> None:
        def snapshot() -> tuple[RoomState, list]:
            return room_state(self.room).seen_by(self.user_id), recent_messages(self.room)

        state, messages = await db(snapshot)()
        self._revision, self._state_json = state.revision, json.dumps(state.as_json())
        self._personal = None
        parts = json.loads(self._parts_json) if self._parts_json else None
        html = (
            rendering.room_parts_html(state, parts=parts)
            + self._personal_html_if_changed(state)
            + rendering.chat_html(messages)
        )
        await self.send(text_data=html)
        rest = json.dumps(
            {"userID": self.user_id, "messages": [rendering.message_json(m) for m in messages]}
        )
        # The state spliced in as serialised above, like an update's.
        frame = f'{{"type": "room.joined", "state": {self._state_json}, {rest[1:]}'
        await self.send(text_data=frame)

    async def _end(self, reason: str, text: str, close_code: int) -> None:
        await self._sent_updates()
        await self.send(text_data=rendering.toast_html(text))
        await self._send_json({"type": "onEnded", "reason": reason})
        await self.close(code=close_code)

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self._send_error(code, message)
        await self.close(code=close_code)

    async def _send_error(self, code: str, message: str, request_id: str | None = None) -> None:
        await self._sent_updates()
        await self.send(text_data=rendering.toast_html(message))
        await self._send_json(
            {"type": "error", "code": code, "message": message, "requestID": request_id}
        )

    async def _send_json(self, data: dict) -> None:
        await self.send(text_data=json.dumps(data))


_last_levels: tuple[dict[str, float] | None, str] = (None, "")


def _levels_frame(levels: dict[str, float]) -> str:
    """The frame for one levels report, encoded once for all the sockets it reaches (every
    listener on a loop is handed the same dict)."""
    global _last_levels
    if _last_levels[0] is not levels:
        # Two decimals: what a ring can show; finer would only make steady levels "change".
        frame = {"type": "levels", "levels": {uid: round(v, 2) for uid, v in levels.items()}}
        _last_levels = (levels, json.dumps(frame))
    return _last_levels[1]


def _join_options(query: dict[str, str]) -> dict[str, Any]:
    names = {
        "role": "role",
        "takeIndexWhenJoining": "take_index",
        "closeWhenJoining": "close_when_joining",
        "turnOnMicrophoneWhenJoining": "mic_on_when_joining",
        "endRoomWhenHostLeaves": "end_when_host_leaves",
    }
    return {names[name]: value for name, value in parse_join_options(query).items()}


def _send_soon(sending: Coroutine[Any, Any, None]) -> None:
    """A send that nothing awaits (levels, media notices): the socket may have closed by
    the time it runs, which is no error worth a traceback."""
    asyncio.ensure_future(sending).add_done_callback(_dropped_if_closed)


def _dropped_if_closed(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a frame was not sent: %r", task.exception())


def _addressed_to(event: dict, state: RoomState, user_id: str) -> bool:
    """Whoever sent the event decided who receives it (``to``); no ``to`` means everyone."""
    to = event.get("to")
    if to is None:
        return True
    return user_id in to.get("users", ()) or (
        to.get("hosts", False) and state.has_host_permissions(user_id)
    )


def _strip(event: dict) -> dict:
    return {key: value for key, value in event.items() if key != "to"}
