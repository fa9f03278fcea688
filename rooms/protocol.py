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


def _role(value: Any, name: str) -> str:
    if value not in ("host", "speaker", "audience"):
        raise ProtocolError(f"'{name}' must be host, speaker or audience.")
    return value


_INDEX = {"index": (_int, True)}
_USER = {"userID": (_str, True)}

# action -> {argument: (parser, required)}. Names follow the seed's controller.
ACTIONS: dict[str, dict[str, tuple[Any, bool]]] = {
    "ping": {},
    # seats
    "seat.take": _INDEX,
    "seat.audience.take": _INDEX,
    "seat.leave": {},
    "seat.speaker.leave": {},
    "seat.host.close": {"targetIndex": (_int, False)},
    "seat.host.open": {"targetIndex": (_int, False)},
    "seat.host.mute": {"targetIndex": (_int, True), "muted": (_bool, False)},
    "seat.host.muteByUserID": {**_USER, "muted": (_bool, False)},
    "seat.host.removeSpeaker": _USER,
    "seat.host.setCoHost": {**_USER, "isCoHost": (_bool, False)},
    "seat.muteLocally": {"targetIndex": (_int, True), "muted": (_bool, False)},
    "seat.muteLocallyByUserID": {**_USER, "muted": (_bool, False)},
    # requests and invitations
    "seat.audience.applyToTake": {"index": (_int, False)},
    "seat.audience.cancelTakingRequest": {},
    "seat.audience.acceptTakingInvitation": {},
    "seat.audience.rejectTakingInvitation": {},
    "seat.host.acceptTakingRequest": _USER,
    "seat.host.rejectTakingRequest": _USER,
    "seat.host.inviteToTake": _USER,
    # reads
    "seat.getEmptySeats": {"includeHostSeats": (_bool, False)},
    "seat.getUserByIndex": _INDEX,
    "seat.getSeatIndexByUserID": _USER,
    "seat.userMap": {},
    # microphone
    "microphone.turnOn": {"isOn": (_bool, True), "userID": (_str, False)},
    "microphone.switchState": {"userID": (_str, False)},
    # room life and moderation
    "room.leave": {},
    "room.end": {},
    "member.kick": _USER,
    "member.ban": _USER,
    # chat and media
    "message.send": {"message": (_str, True), "attributes": (_object, False)},
    "rtc.offer": {"sdp": (_str, True)},
}

# The joiner's config, from the socket URL's query string (the embed passes its config).
JOIN_OPTIONS: dict[str, Any] = {
    "role": _role,
    "takeIndexWhenJoining": _int,
    "closeWhenJoining": _bool,
    "turnOnMicrophoneWhenJoining": _bool,
    "endRoomWhenHostLeaves": _bool,
}


def parse_join_options(query: dict[str, str]) -> dict[str, Any]:
    """Known join options, parsed; an unknown or ill-typed one is an error, not ignored."""
    unknown = sorted(set(query) - set(JOIN_OPTIONS) - {"token"})
    if unknown:
        raise ProtocolError(f"Unknown join option(s): {', '.join(unknown)}.")
    return {
        name: JOIN_OPTIONS[name](value, name)
        for name, value in query.items()
        if name in JOIN_OPTIONS
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
