"""The room's JSON config: the seed's ``ZegoUIKitPrebuiltLiveAudioRoomConfig``, checked here.

An integrator passes a config to ``LiveAudioRoom.create``; ``validate_config`` merges it over
the defaults of its role (``preset``: the seed's ``.host()`` / ``.audience()``) and returns the
resolved config, or raises ``ConfigError`` listing every unknown or ill-typed field at once.
Every field, its type and its defaults are in docs/config.md.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_CONFIG_BYTES = 16 * 1024
MAX_ROWS = 8
MAX_SEATS_PER_ROW = 8
MAX_SPACING = 64  # px
MAX_TEXT = 200
MAX_URL = 2048
MAX_HIDDEN_USERS = 100
MAX_USER_ID = 128
MAX_JOINS_UP_TO = 100_000  # members online: past it, no join or leave lines in the chat

ROLES = ("host", "speaker", "audience")
ALIGNMENTS = ("start", "end", "center", "spaceBetween", "spaceAround", "spaceEvenly")
# The seed's ZegoLiveAudioRoomMenuBarButtonName, plus the buttons this room's bar has.
BUTTONS = (
    "toggleMicrophoneButton",
    "leaveSeatButton",
    "applyToTakeSeatButton",
    "closeSeatButton",
    "muteAllButton",
    "endRoomButton",
    "showMemberListButton",
    "minimizingButton",
    "leaveButton",
)
# pickFile's allowedExtensions in the seed: video, then audio.
MEDIA_EXTENSIONS = (
    "avi", "flv", "mkv", "mov", "mp4", "mpeg", "webm", "wmv",
    "aac", "midi", "mp3", "ogg", "wav",
)  # fmt: skip

# config.mediaPlayer.rolesCanControl and config.roomProperties.rolesCanWrite: the roles a
# room shows (rooms.roles.role_listed).
MEDIA_ROLES = ("host", "cohost", "speaker", "audience")
# What a host's config sets on the room itself as they join (rooms.services.members), not
# only on their own page: (section, field).
ROOM_WIDE_OPTIONS = (("mediaPlayer", "rolesCanControl"), ("roomProperties", "rolesCanWrite"))

# Every text the room shows. "%0" stands for a user's name where a text has one.
INNER_TEXT = {
    "memberListTitle": "In the room",
    "chatTabLabel": "Chat",
    "membersMore": "more listening",
    "memberListShowMore": "Show more",
    "memberListSearchLabel": "Find someone",
    "memberListNoMatches": "No one here is called %0.",
    "memberListRoleHost": "host",
    "memberListRoleCoHost": "cohost",
    "memberListRoleSpeaker": "speaker",
    "memberListRoleAudience": "audience",
    "hostSeatLabel": "Host",
    "lockedSeatLabel": "locked",
    "emptyStageMessage": "No one is on stage yet.",
    "microphoneOnLabel": "mic on",
    "microphoneOffLabel": "muted",
    "turnOnMicrophoneButton": "Unmute mic",
    "turnOffMicrophoneButton": "Mute mic",
    "leaveSeatButton": "Leave seat",
    "applyToTakeSeatButton": "Raise hand",
    "cancelTheTakeSeatApplicationButton": "Lower hand",
    "closeAllSeatsButton": "Lock seats",
    "muteAllButton": "Mute all",
    "openAllSeatsButton": "Unlock seats",
    "endRoomButton": "End room",
    "leaveButton": "Leave",
    "minimizeButton": "Minimize",
    "inviteToTakeSeatButton": "Invite",
    "removeSpeakerButton": "Remove",
    "removeSpeakerConfirm": "Take %0 off their seat?",
    "kickOutButton": "Kick",
    "kickOutConfirm": "Remove %0 from the room?",
    "makeCoHostButton": "Make co-host",
    "revokeCoHostButton": "Revoke co-host",
    "raisedHandsTitle": "Raised hands",
    "acceptButton": "Accept",
    "rejectButton": "Reject",
    "invitationMessage": "%0 invites you to take a seat.",
    "acceptInvitationButton": "Take a seat",
    "declineInvitationButton": "Decline",
    "messagePlaceholder": "Say something…",
    "sendMessageButton": "Send",
    "durationLabel": "Live for",
    "userJoinedMessage": "%0 joined",
    "userLeftMessage": "%0 left",
    "nowSpeakingMessage": "%0 is now speaking",
}


class ConfigError(Exception):
    """A config that cannot be used. ``fields``: ``[{"field": path, "message": why}]``."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        names = ", ".join(f["field"] for f in fields[:5])
        more = f" and {len(fields) - 5} more" if len(fields) > 5 else ""
        super().__init__(f"The config has {len(fields)} bad field(s): {names}{more}.")
        self.message = str(self)
        self.fields = fields


# --- the schema: each field knows how to check itself -------------------------------------

Errors = list[dict[str, str]]


@dataclass(frozen=True)
class Spec:
    """One field's type. ``check`` returns the cleaned value or records an error."""

    check: Callable[[Any, str, Errors], Any]


_BAD = object()  # the value of a field that had an error


def _fail(errors: Errors, path: str, message: str) -> object:
    errors.append({"field": path, "message": message})
    return _BAD


def boolean() -> Spec:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if isinstance(value, bool):
            return value
        return _fail(errors, path, "must be true or false")

    return Spec(check)


def integer(low: int, high: int) -> Spec:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return _fail(errors, path, "must be an integer")
        if not low <= value <= high:
            return _fail(errors, path, f"must be between {low} and {high}")
        return value

    return Spec(check)


def text(max_length: int = MAX_TEXT, *, allow_empty: bool = True) -> Spec:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, str):
            return _fail(errors, path, "must be a string")
        if len(value) > max_length:
            return _fail(errors, path, f"must be at most {max_length} characters")
        if not value and not allow_empty:
            return _fail(errors, path, "must not be empty")
        return value

    return Spec(check)


def choice(values: tuple[str, ...]) -> Spec:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if value not in values or not isinstance(value, str):
            return _fail(errors, path, f"must be one of {', '.join(values)}")
        return value

    return Spec(check)


# No quotes, brackets, spaces or backslashes: a URL that is safe in any attribute or CSS.
_URL = re.compile(r"^https?://[^\s\"'()<>\\`]+$")


def image_url() -> Spec:
    """An http(s) image URL, or "" for none. ``{userID}`` may stand for the user's ID."""

    def check(value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, str):
            return _fail(errors, path, "must be a string")
        if value and (len(value) > MAX_URL or not _URL.match(value)):
            return _fail(errors, path, f"must be an http(s) URL of at most {MAX_URL} characters")
        return value

    return Spec(check)


def list_of(item: Spec, max_items: int, *, unique: bool = False) -> Spec:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, list):
            return _fail(errors, path, "must be a list")
        if len(value) > max_items:
            return _fail(errors, path, f"must have at most {max_items} items")
        cleaned = [item.check(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        if unique and len({json.dumps(v) for v in value}) != len(value):
            return _fail(errors, path, "must not repeat an item")
        return cleaned

    return Spec(check)


def obj(fields: dict[str, Spec], *, nullable: bool = False) -> Spec:
    def check(value: Any, path: str, errors: Errors) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            return _fail(errors, path, "must be an object" + (" or null" if nullable else ""))
        cleaned = {}
        for name, field_value in value.items():
            where = f"{path}.{name}" if path else str(name)
            spec = fields.get(name)
            if spec is None:
                _fail(errors, where, "is not a config field")
            else:
                cleaned[name] = spec.check(field_value, where, errors)
        return cleaned

    return Spec(check)


SEAT_INDEX = integer(0, MAX_ROWS * MAX_SEATS_PER_ROW - 1)
DIALOG = obj(
    {
        "title": text(),
        "message": text(),
        "cancelButtonName": text(40),
        "confirmButtonName": text(40),
    },
    nullable=True,
)

SCHEMA = obj(
    {
        "role": choice(ROLES),
        "turnOnMicrophoneWhenJoining": boolean(),
        "endRoomWhenHostLeaves": boolean(),
        "seat": obj(
            {
                "layout": obj(
                    {
                        "rowConfigs": list_of(
                            obj(
                                {
                                    "count": integer(1, MAX_SEATS_PER_ROW),
                                    "alignment": choice(ALIGNMENTS),
                                    "seatSpacing": integer(0, MAX_SPACING),
                                }
                            ),
                            MAX_ROWS,
                        ),
                        "rowSpacing": integer(0, MAX_SPACING),
                    }
                ),
                "hostIndexes": list_of(SEAT_INDEX, MAX_SEATS_PER_ROW, unique=True),
                "takeIndexWhenJoining": integer(-1, MAX_ROWS * MAX_SEATS_PER_ROW - 1),
                "closeWhenJoining": boolean(),
                "showSoundWaveInAudioMode": boolean(),
                "avatarURL": image_url(),
            }
        ),
        "background": obj({"imageURL": image_url()}),
        "confirmDialogInfo": DIALOG,
        "endConfirmDialogInfo": DIALOG,
        "bottomMenuBar": obj(
            {
                "hostButtons": list_of(choice(BUTTONS), len(BUTTONS), unique=True),
                "speakerButtons": list_of(choice(BUTTONS), len(BUTTONS), unique=True),
                "audienceButtons": list_of(choice(BUTTONS), len(BUTTONS), unique=True),
                "showInRoomMessageButton": boolean(),
            }
        ),
        "inRoomMessage": obj(
            {"visible": boolean(), "showName": boolean(), "showAvatar": boolean()}
        ),
        "mediaPlayer": obj(
            {
                "supportTransparent": boolean(),
                "visible": boolean(),
                "allowedExtensions": list_of(
                    choice(MEDIA_EXTENSIONS), len(MEDIA_EXTENSIONS), unique=True
                ),
                "rolesCanControl": list_of(choice(MEDIA_ROLES), len(MEDIA_ROLES), unique=True),
            }
        ),
        "roomProperties": obj(
            {"rolesCanWrite": list_of(choice(MEDIA_ROLES), len(MEDIA_ROLES), unique=True)}
        ),
        # A file the server starts when the host joins (and nothing plays yet): a mediaID
        # of this room's files, or an https:// URL of a host the app allows.
        "backgroundMedia": obj(
            {"path": text(MAX_URL), "enableRepeat": boolean()},
            nullable=True,
        ),
        "memberList": obj(
            {
                "showMicrophoneState": boolean(),
                "hiddenUsers": list_of(
                    text(MAX_USER_ID, allow_empty=False), MAX_HIDDEN_USERS, unique=True
                ),
            }
        ),
        "duration": obj({"isVisible": boolean()}),
        # Emoji reactions: a short burst over the sender's avatar, on every page.
        "reactions": obj({"enabled": boolean()}),
        # Lines in the chat for joins, leaves and new speakers: the page's own, not stored.
        "systemMessages": obj({"enabled": boolean(), "joinsUpTo": integer(0, MAX_JOINS_UP_TO)}),
        "innerText": obj({name: text() for name in INNER_TEXT}),
    }
)


# --- presets ------------------------------------------------------------------------------

# A row given with only some fields (``{"count": 3}``) gets the rest from here.
ROW_DEFAULTS: dict[str, Any] = {"count": 4, "alignment": "center", "seatSpacing": 16}

_COMMON: dict[str, Any] = {
    "turnOnMicrophoneWhenJoining": False,
    "endRoomWhenHostLeaves": False,
    "seat": {
        "layout": {
            "rowConfigs": [
                {"count": 4, "alignment": "center", "seatSpacing": 16},
                {"count": 4, "alignment": "center", "seatSpacing": 16},
            ],
            "rowSpacing": 16,
        },
        "hostIndexes": [0],
        "takeIndexWhenJoining": -1,
        "closeWhenJoining": False,
        "showSoundWaveInAudioMode": True,
        "avatarURL": "",
    },
    "background": {"imageURL": ""},
    "confirmDialogInfo": {
        "title": "Leave the room",
        "message": "Leave the room?",
        "cancelButtonName": "Cancel",
        "confirmButtonName": "Leave",
    },
    "endConfirmDialogInfo": {
        "title": "End the room",
        "message": "End the room for everyone?",
        "cancelButtonName": "Cancel",
        "confirmButtonName": "End",
    },
    "bottomMenuBar": {
        "hostButtons": [
            "toggleMicrophoneButton",
            "leaveSeatButton",
            "closeSeatButton",
            "muteAllButton",
            "endRoomButton",
            "showMemberListButton",
            "leaveButton",
        ],
        "speakerButtons": [
            "toggleMicrophoneButton",
            "leaveSeatButton",
            "showMemberListButton",
            "leaveButton",
        ],
        "audienceButtons": ["applyToTakeSeatButton", "showMemberListButton", "leaveButton"],
        "showInRoomMessageButton": True,
    },
    "inRoomMessage": {"visible": True, "showName": True, "showAvatar": True},
    "mediaPlayer": {
        "supportTransparent": False,
        "visible": False,
        "allowedExtensions": list(MEDIA_EXTENSIONS),
        "rolesCanControl": ["host"],
    },
    "roomProperties": {"rolesCanWrite": list(MEDIA_ROLES)},
    "backgroundMedia": None,
    "memberList": {"showMicrophoneState": True, "hiddenUsers": []},
    "duration": {"isVisible": False},
    "reactions": {"enabled": True},
    "systemMessages": {"enabled": True, "joinsUpTo": 50},
    "innerText": dict(INNER_TEXT),
}

_ROLE_DEFAULTS: dict[str, dict[str, Any]] = {
    # The seed's .host(): on the first host seat, microphone on.
    "host": {
        "role": "host",
        "turnOnMicrophoneWhenJoining": True,
        "seat": {"takeIndexWhenJoining": 0},
        "mediaPlayer": {"visible": True},
    },
    # A speaker takes the first free seat (takeIndexWhenJoining -1) with the microphone on.
    "speaker": {"role": "speaker", "turnOnMicrophoneWhenJoining": True},
    # The seed's .audience(): listening, microphone off.
    "audience": {"role": "audience"},
}


def preset(role: str) -> dict[str, Any]:
    """The defaults of a role (a fresh copy): ``ZegoUIKitPrebuiltLiveAudioRoomConfig.host()``..."""
    if role not in _ROLE_DEFAULTS:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return _merge(copy.deepcopy(_COMMON), copy.deepcopy(_ROLE_DEFAULTS[role]))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Objects merge field by field; anything else (lists too) replaces."""
    for name, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            base[name] = _merge(base[name], value)
        else:
            base[name] = value
    return base


# --- validation ---------------------------------------------------------------------------


def validate_config(data: Any) -> dict[str, Any]:
    """The integrator's config over its role's preset, or ``ConfigError`` with every bad field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([{"field": "config", "message": "must be an object"}])
    size = len(json.dumps(data, ensure_ascii=False).encode())
    if size > MAX_CONFIG_BYTES:
        message = f"is {size} bytes; at most {MAX_CONFIG_BYTES} are allowed"
        raise ConfigError([{"field": "config", "message": message}])
    errors: Errors = []
    cleaned = SCHEMA.check(data, "", errors)
    if errors:
        raise ConfigError(errors)
    role = cleaned.get("role", "audience")
    resolved = _merge(preset(role), cleaned)
    seat = resolved["seat"]
    layout = seat["layout"]
    layout["rowConfigs"] = [{**ROW_DEFAULTS, **row} for row in layout["rowConfigs"]]
    if role == "host" and "takeIndexWhenJoining" not in cleaned.get("seat", {}):
        # The host's seat follows the host seats the integrator chose.
        seat["takeIndexWhenJoining"] = seat["hostIndexes"][0] if seat["hostIndexes"] else -1
    _check_seats(resolved, errors)
    if errors:
        raise ConfigError(errors)
    return resolved


def _check_seats(config: dict[str, Any], errors: Errors) -> None:
    """What only the whole layout can tell: indexes must name seats that exist."""
    seat = config["seat"]
    rows = seat["layout"]["rowConfigs"]
    if not rows:
        _fail(errors, "seat.layout.rowConfigs", "must have at least one row")
        return
    seats = sum(row["count"] for row in rows)
    for i, index in enumerate(seat["hostIndexes"]):
        if index >= seats:
            _fail(errors, f"seat.hostIndexes[{i}]", f"must be a seat of the layout (0-{seats - 1})")
    if seat["takeIndexWhenJoining"] >= seats:
        _fail(
            errors,
            "seat.takeIndexWhenJoining",
            f"must be -1 or a seat of the layout (0-{seats - 1})",
        )


# --- what the server does with a config ---------------------------------------------------


def seat_rows(config: dict[str, Any]) -> list[int]:
    return [row["count"] for row in config["seat"]["layout"]["rowConfigs"]]


def join_options(config: dict[str, Any]) -> dict[str, Any]:
    """``services.JoinOptions`` keyword arguments from a resolved config."""
    take = config["seat"]["takeIndexWhenJoining"]
    return {
        "role": config["role"],
        "take_index": None if take < 0 else take,
        "close_when_joining": config["seat"]["closeWhenJoining"],
        "mic_on_when_joining": config["turnOnMicrophoneWhenJoining"],
        "end_when_host_leaves": config["endRoomWhenHostLeaves"],
        "media_roles": _roles(config["mediaPlayer"]["rolesCanControl"]),
        "property_roles": _roles(config["roomProperties"]["rolesCanWrite"]),
        "background_media": background_media(config),
    }


def _roles(roles: list[str] | None) -> tuple[str, ...] | None:
    return None if roles is None else tuple(roles)


def without_unnamed_room_options(config: dict[str, Any], given: Any) -> dict[str, Any]:
    """``config`` (resolved) with the room-wide options that ``given`` (the integrator's own
    config) does not name set to None: a host's config changes the room's roles only where
    it names them (a host who joins later without them keeps what an earlier one set)."""
    for section, name in ROOM_WIDE_OPTIONS:
        named = isinstance(given, dict) and name in (given.get(section) or {})
        if not named:
            config[section][name] = None
    return config


def background_media(config: dict[str, Any]) -> tuple[str, bool] | None:
    """``(path, enableRepeat)`` of a config's backgroundMedia, or None."""
    media = config.get("backgroundMedia")
    if not media or not media.get("path"):
        return None
    return media["path"], bool(media.get("enableRepeat", False))


def join_query(config: dict[str, Any]) -> dict[str, str]:
    """The same join options as the socket URL's query of a token-based page."""
    take = config["seat"]["takeIndexWhenJoining"]
    query = {
        "role": config["role"],
        "turnOnMicrophoneWhenJoining": _flag(config["turnOnMicrophoneWhenJoining"]),
    }
    if take >= 0:
        query["takeIndexWhenJoining"] = str(take)
    if config["seat"]["closeWhenJoining"]:
        query["closeWhenJoining"] = "true"
    if config["endRoomWhenHostLeaves"]:
        query["endRoomWhenHostLeaves"] = "true"
    return query


def _flag(value: bool) -> str:
    return "true" if value else "false"
