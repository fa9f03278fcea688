"""What crosses the channel layer between daphne processes and media workers, as plain data.

The channel layer (channels-redis) carries msgpack: dicts, lists, strings, numbers, bytes.
The media plane's calls and reports also hold a few of its own types (a playback spec, an
SEI, a set of user IDs). Each is written as a tagged list and read back only if its tag is
one of these: nothing from the wire is ever unpickled or imported by name, so whoever can
write to Redis still cannot make a worker run code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import MediaError
from .player import PlaybackReport, PlaybackSpec
from .sei import Sei, SeiRelease

_TAG = "__media__"
_TYPES: dict[str, type] = {
    "PlaybackSpec": PlaybackSpec,
    "PlaybackReport": PlaybackReport,
    "Sei": Sei,
    "SeiRelease": SeiRelease,
}
MAX_DEPTH = 8


def encode(value: Any) -> Any:
    """`value` as msgpack-able data."""
    if isinstance(value, frozenset | set):
        return {_TAG: "set", "items": sorted(value)}
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TAG: type(value).__name__, "fields": fields}
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to the media plane")


def decode(value: Any, depth: int = 0) -> Any:
    """What `encode` wrote; a `MediaError` for anything it could not have written."""
    if depth > MAX_DEPTH:
        raise MediaError("bad_request", "media message nested too deep")
    if isinstance(value, list):
        return tuple(decode(item, depth + 1) for item in value)
    if isinstance(value, dict):
        if "__dict__" in value:
            return {decode(k, depth + 1): decode(v, depth + 1) for k, v in value["__dict__"]}
        tag = value.get(_TAG)
        if tag == "set":
            return frozenset(decode(item, depth + 1) for item in value.get("items", ()))
        kind = _TYPES.get(tag) if isinstance(tag, str) else None
        if kind is None or not isinstance(value.get("fields"), dict):
            raise MediaError("bad_request", f"unknown media value {tag!r}")
        fields = {str(k): decode(v, depth + 1) for k, v in value["fields"].items()}
        if kind is SeiRelease:
            fields["items"] = tuple(tuple(item) for item in fields.get("items", ()))
        try:
            return kind(**fields)
        except TypeError as exc:
            raise MediaError("bad_request", f"bad {tag}: {exc}") from exc
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    raise MediaError("bad_request", f"unexpected {type(value).__name__} in a media message")
