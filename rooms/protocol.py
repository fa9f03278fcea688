"""The socket's wire format: frames, argument types, join options. What a client sends is
checked here before any service runs; which actions exist is ``rooms.realtime.actions``.

Clients are the room page (htmx's ws extension sends form values, so numbers and booleans
may arrive as strings) and programs (the embed SDK, bots). Every message is an object with an
``action`` and, optionally, a ``requestID`` that the reply echoes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rooms import text

MAX_REQUEST_ID = 64
MAX_JSON_DEPTH = 16  # of a whole frame: {"action", "attributes": {...}} needs few levels
MAX_ID_CHARS = 200  # user IDs named in an action (a token's user_id is at most 64)


class ProtocolError(Exception):
    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = "bad_request"
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Frame:
    """One message from a client, decoded but not yet checked against its action."""

    action: str
    request_id: str | None
    data: dict[str, Any]


# An argument type: turns a wire value into a Python value or raises ProtocolError.
Parser = Callable[[Any, str], Any]


def integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ProtocolError(f"'{name}' must be an integer.")
    if isinstance(value, int) and abs(value) < 10**9:
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 10:
        return int(value)
    raise ProtocolError(f"'{name}' must be an integer.")


def number(value: Any, name: str) -> float:
    """Any finite JSON number (a time in milliseconds)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"'{name}' must be a number.")
    return float(value)


def stream_type(value: Any, name: str) -> str:
    """``audioVideo.sendSEI``'s stream: the sender's microphone or the media player."""
    if value not in ("main", "media"):
        raise ProtocolError(f"'{name}' must be main or media.")
    return str(value)


REACTIONS = ("👏", "❤️", "😂", "🔥", "🎉", "👍")


def reaction(value: Any, name: str) -> str:
    """One of the room's emoji reactions."""
    if value not in REACTIONS:
        raise ProtocolError(f"'{name}' must be one of {' '.join(REACTIONS)}.")
    return str(value)


def boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ProtocolError(f"'{name}' must be true or false.")


def identifier(value: Any, name: str) -> str:
    """A user ID or the like: one line of text."""
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' must be a string.")
    return _checked(lambda: text.clean_text(value, name=name, max_chars=MAX_ID_CHARS))


def media_source(value: Any, name: str) -> str:
    """``media.play``'s ``filePathOrURL``: a mediaID or a URL, one line of text."""
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' must be a string.")
    return _checked(lambda: text.clean_text(value, name=name, max_chars=2048, min_chars=1))


def message_text(value: Any, name: str) -> str:
    """Chat text: several lines allowed; its length is the service's rule."""
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' must be a string.")
    return _checked(lambda: text.clean_text(value, name=name, max_chars=10_000, multiline=True))


def sdp(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' must be a string.")
    return _checked(lambda: text.clean_text(value, name=name, max_chars=100_000, multiline=True))


def json_object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"'{name}' must be an object.")
    return _checked(lambda: text.check_json(value, name=name))


def base64_bytes(value: Any, name: str) -> bytes:
    """Bytes sent as standard base64 (``room.sendCommand``'s command); their size is the
    service's rule."""
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' must be a base64 string.")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ProtocolError(f"'{name}' is not valid base64.") from None


def for_the_service(value: Any, name: str) -> Any:
    """Any JSON value, passed on as it came: its rules are the service's, which names the
    one it breaks (a room property's key and value, ``rooms.services.properties``)."""
    return value


def role(value: Any, name: str) -> str:
    if value not in ("host", "speaker", "audience"):
        raise ProtocolError(f"'{name}' must be host, speaker or audience.")
    return value


def _checked(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except text.InvalidText as exc:
        raise ProtocolError(exc.message) from None


def parse_frame(raw: str | None) -> Frame:
    if raw is None:
        raise ProtocolError("Messages must be JSON text.")
    try:
        data = text.loads_json(raw, max_depth=MAX_JSON_DEPTH)
    except text.InvalidText as exc:
        raise ProtocolError(exc.message) from None
    except ValueError as exc:
        raise ProtocolError("Messages must be JSON objects.") from exc
    if not isinstance(data, dict):
        raise ProtocolError("Messages must be JSON objects.")
    request_id = data.get("requestID")
    if request_id is not None and (
        not isinstance(request_id, str)
        or len(request_id) > MAX_REQUEST_ID
        or not request_id.isprintable()
    ):
        raise ProtocolError(f"'requestID' must be a string of at most {MAX_REQUEST_ID} characters.")
    action = data.get("action")
    if not isinstance(action, str):
        raise ProtocolError("Messages need an 'action'.", request_id)
    return Frame(action=action, request_id=request_id, data=data)


# The joiner's config, from the socket URL's query string (the embed passes its config):
# wire name -> (parser, JoinOptions field).
JOIN_OPTIONS: dict[str, tuple[Parser, str]] = {
    "role": (role, "role"),
    "takeIndexWhenJoining": (integer, "take_index"),
    "closeWhenJoining": (boolean, "close_when_joining"),
    "turnOnMicrophoneWhenJoining": (boolean, "mic_on_when_joining"),
    "endRoomWhenHostLeaves": (boolean, "end_when_host_leaves"),
}


def parse_join_options(query: dict[str, str]) -> dict[str, Any]:
    """Known join options as JoinOptions fields; an unknown or ill-typed one is an error."""
    unknown = sorted(set(query) - set(JOIN_OPTIONS) - {"token"})
    if unknown:
        raise ProtocolError(f"Unknown join option(s): {_names(unknown)}.")
    options = {}
    for name, value in query.items():
        if name in JOIN_OPTIONS:
            parse, field = JOIN_OPTIONS[name]
            options[field] = parse(value, name)
    return options


def _names(names: list[str]) -> str:
    return ", ".join(json.dumps(name, ensure_ascii=True)[1:-1][:40] for name in names[:5])
