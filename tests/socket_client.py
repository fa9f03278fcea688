"""A test participant on the real room consumer, through Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from liveaudio.asgi import application
from rooms.models import Room
from rooms.tokens import token_mint
from tests.room_frames import with_members

ORIGIN = (b"origin", b"http://localhost")
# What every test of the real consumer needs: an event loop, a database that other threads
# see (the consumer's queries run in a thread), and no timers left running afterwards.
SOCKET_TESTS = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("settled_timers"),
]
TIMEOUT = 5


def socket_path(room: Room, token: str | None) -> str:
    query = f"?token={token}" if token is not None else ""
    return f"/ws/rooms/{room.app.app_id}/{room.room_id}/{query}"


def event_of(frame: dict, kind: str, **fields: object) -> dict | None:
    """The frame's first event of `kind` with these fields (one update frame may carry
    several changes, when they came within 100 ms of each other)."""
    return next(
        (
            e
            for e in frame.get("events", [])
            if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
        ),
        None,
    )


def update_with(kind: str, **fields: object) -> Callable[[dict], bool]:
    """For `Participant.wait_for`: a room.update holding such an event."""
    return lambda frame: (
        frame.get("type") == "room.update" and event_of(frame, kind, **fields) is not None
    )


class Participant:
    """Keeps every frame; tests wait for the JSON frame or HTML they expect."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.json: list[dict] = []  # room.update frames with their whole state (with_members)
        self.html: list[str] = []
        self.raw: list[str] = []  # the JSON frames as sent
        self.state: dict | None = None  # the newest state, as the page has it
        self.closed_code: int | None = None
        self._html_cursor = 0  # HTML frames before this one were already matched

    @classmethod
    async def join(
        cls,
        room: Room,
        user_id: str,
        *,
        user_name: str | None = None,
        role: str | None = None,
        token: str | None = None,
        expect_welcome: bool = True,
        **options: Any,
    ) -> Participant:
        """Join as ``user_id``; ``role`` is both the token's ceiling and the role asked for,
        ``options`` are further join options (``takeIndexWhenJoining=3``...)."""
        if token is None:
            token = await _mint(room, user_id, user_name or user_id.title(), role)
        if role is not None:
            options.setdefault("role", "speaker" if role == "cohost" else role)
        path = socket_path(room, token) + "".join(f"&{k}={v}" for k, v in options.items())
        communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        participant = cls(communicator)
        if expect_welcome:
            await participant.wait_for("room.joined")
        return participant

    async def send(self, action: str, **args: Any) -> None:
        await self.communicator.send_json_to({"action": action, **args})

    async def request(self, action: str, **args: Any) -> dict:
        """Send an action with a requestID; return its reply or error frame."""
        request_id = f"r{id(args)}-{len(self.json)}"
        await self.communicator.send_json_to({"action": action, "requestID": request_id, **args})
        return await self.wait_for(lambda f: f.get("requestID") == request_id)

    async def wait_for(self, match: Any, timeout: float = TIMEOUT) -> dict:
        """The next JSON frame of a type (str) or matching a predicate; earlier ones are kept."""
        predicate = match if callable(match) else (lambda f: f.get("type") == match)
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._next_json()
                if predicate(frame):
                    return frame

    async def wait_for_html(self, fragment: str, timeout: float = TIMEOUT) -> str:
        """The next HTML frame holding ``fragment``, including frames already received."""
        for position in range(self._html_cursor, len(self.html)):
            if fragment in self.html[position]:
                self._html_cursor = position + 1
                return self.html[position]
        async with asyncio.timeout(timeout):
            while True:
                output = await self.communicator.receive_output(timeout)
                if output["type"] == "websocket.close":
                    self.closed_code = output.get("code")
                    raise AssertionError(f"socket closed ({self.closed_code}) before {fragment!r}")
                text = output.get("text", "")
                if text.startswith("{"):
                    self.raw.append(text)
                    self._keep(json.loads(text))
                else:
                    self.html.append(text)
                    if fragment in text:
                        self._html_cursor = len(self.html)
                        return text

    async def wait_closed(self, timeout: float = TIMEOUT) -> int:
        async with asyncio.timeout(timeout):
            while self.closed_code is None:
                await self._next_json()
        return self.closed_code

    async def _next_json(self) -> dict:
        while True:
            output = await self.communicator.receive_output(TIMEOUT)
            if output["type"] == "websocket.close":
                self.closed_code = output.get("code")
                return {"type": "__closed__", "code": self.closed_code}
            text = output.get("text", "")
            if text.startswith("{"):
                self.raw.append(text)
                return self._keep(json.loads(text))
            self.html.append(text)

    def _keep(self, frame: dict) -> dict:
        if frame.get("type") == "room.update":
            frame["state"] = with_members(self.state, frame)
        if frame.get("type") in ("room.update", "room.joined"):
            self.state = frame["state"]
        self.json.append(frame)
        return frame

    async def nothing_more(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def leave(self) -> None:
        await self.communicator.disconnect()


async def _mint(room: Room, user_id: str, user_name: str, role: str | None) -> str:
    from channels.db import database_sync_to_async

    @database_sync_to_async
    def mint() -> str:
        fresh = Room.objects.select_related("app").get(pk=room.pk)
        return token_mint(
            app=fresh.app, room_id=fresh.room_id, user_id=user_id, user_name=user_name, role=role
        )

    return await mint()
