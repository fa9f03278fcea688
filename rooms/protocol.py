"""The socket's JSON protocol: what a client may send, checked before any service runs.

Clients are the room page (htmx's ws extension sends form values, so numbers and booleans
may arrive as strings) and programs (the embed SDK, bots). Every message is an object with an
``action`` and, optionally, a ``requestID`` that the reply echoes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_REQUEST_ID = 64


class ProtocolError(Exception):
    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = "bad_request"
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Command:
    action: str
    request_id: str | None
    args: dict[str, Any] = field(default_factory=dict)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"'{name}' must be an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 10:
        return int(value)
    raise ProtocolError(f"'{name}' must be an integer.")


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ProtocolError(f"'{name}' must be true or false.")


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' must be a string.")
    return value


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"'{name}' must be an object.")
    return value


# action -> {argument: (parser, required)}
ACTIONS: dict[str, dict[str, tuple[Any, bool]]] = {
    "ping": {},
    "seat.take": {"index": (_int, True)},
    "seat.leave": {},
    "seat.host.close": {"targetIndex": (_int, False)},
    "seat.host.open": {"targetIndex": (_int, False)},
    "microphone.turnOn": {"isOn": (_bool, True)},
    "message.send": {"message": (_str, True), "attributes": (_object, False)},
    "seat.host.mute": {"targetIndex": (_int, True), "muted": (_bool, False)},
    "seat.muteLocally": {"targetIndex": (_int, True), "muted": (_bool, False)},
    "seat.muteLocallyByUserID": {"userID": (_str, True), "muted": (_bool, False)},
    "rtc.offer": {"sdp": (_str, True)},
}


def parse_command(text: str | None) -> Command:
    if text is None:
        raise ProtocolError("Messages must be JSON text.")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("Messages must be JSON objects.") from exc
    if not isinstance(data, dict):
        raise ProtocolError("Messages must be JSON objects.")
    request_id = data.get("requestID")
    if request_id is not None and (
        not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID
    ):
        raise ProtocolError(f"'requestID' must be a string of at most {MAX_REQUEST_ID} characters.")
    action = data.get("action")
    spec = ACTIONS.get(action) if isinstance(action, str) else None
    if spec is None:
        raise ProtocolError(f"Unknown action {action!r}.", request_id)
    args = {}
    try:
        for name, (parse, required) in spec.items():
            if name in data:
                args[name] = parse(data[name], name)
            elif required:
                raise ProtocolError(f"'{action}' needs '{name}'.")
    except ProtocolError as exc:
        raise ProtocolError(exc.message, request_id) from None
    return Command(action=action, request_id=request_id, args=args)
