"""What the HTTP API reads and writes. Field names are the seed's (camelCase: ``roomID``).

Limits are the models' and the token's, so a request the schema admits is one the services
can store; anything else is refused before a handler runs.
"""

from __future__ import annotations

from datetime import datetime
from math import ceil
from typing import Annotated, Literal

from django.conf import settings
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema

from rooms.models import PROPERTY_KEY_MAX_BYTES, PROPERTY_VALUE_MAX_BYTES, ROOM_ID_PATTERN
from rooms.text import LINE_CHAR, MULTILINE_CHAR, clean_text
from rooms.tokens import MAX_USER_ID, MAX_USER_NAME

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 24 * 3600
MAX_TEXT = 1000  # Message.text; LIVEAUDIO_MESSAGE_MAX_CHARS
# Printable text without line breaks or other control characters (rooms.text's rules).
LINE_PATTERN = rf"^{LINE_CHAR}+$"
TEXT_PATTERN = rf"^{MULTILINE_CHAR}*[^\s\x00-\x1f\x7f-\x9f]{MULTILINE_CHAR}*$"


def checked_text(*, name: str, max_chars: int, multiline: bool = False) -> AfterValidator:
    """The pattern describes the text in the OpenAPI document; ``rooms.text`` decides, as it
    does for every other entry point."""
    return AfterValidator(
        lambda value: clean_text(value, name=name, max_chars=max_chars, multiline=multiline)
    )


RoomID = Annotated[str, Field(pattern=ROOM_ID_PATTERN, examples=["friday-jam"])]
UserID = Annotated[
    str,
    Field(min_length=1, max_length=MAX_USER_ID, pattern=LINE_PATTERN, examples=["u-42"]),
    checked_text(name="userID", max_chars=MAX_USER_ID),
]
UserName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_USER_NAME, pattern=LINE_PATTERN, examples=["Ada"]),
    checked_text(name="userName", max_chars=MAX_USER_NAME),
]


class In(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class RoomFilter(In):
    status: Literal["live", "ended", "all"] = Field("live", description="Which rooms.")
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class MemberFilter(In):
    banned: bool = Field(False, description="List the banned users instead.")


class TokenIn(In):
    roomID: RoomID
    userID: UserID
    userName: UserName
    role: Literal["host", "speaker", "audience"] | None = Field(
        None, description="The highest role the user may take; none means up to speaker."
    )
    ttlSeconds: int = Field(3600, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)


class TokenOut(BaseModel):
    token: str
    expiresAt: int = Field(description="Unix time (seconds) when the token expires.")


class RoomIn(In):
    roomID: RoomID
    title: Annotated[str, checked_text(name="title", max_chars=120)] = Field(
        "", max_length=120, pattern=rf"^{LINE_CHAR}*$"
    )


class RoomOut(BaseModel):
    roomID: str
    title: str
    live: bool
    createdBy: str
    createdAt: datetime
    endedAt: datetime | None
    seatCount: int
    onlineCount: int = Field(description="Members in the room now.")


class RoomList(BaseModel):
    rooms: list[RoomOut]


class MemberOut(BaseModel):
    userID: str
    userName: str
    role: Literal["host", "cohost", "speaker", "audience"]
    online: bool
    micOn: bool
    seatIndex: int | None
    banned: bool = False


class MemberList(BaseModel):
    members: list[MemberOut]


class SeatOut(BaseModel):
    index: int
    locked: bool
    isHostSeat: bool
    userID: str | None
    userName: str | None
    micOn: bool
    online: bool


class SeatList(BaseModel):
    rows: list[int] = Field(description="Seats per row, e.g. [4, 4].")
    seats: list[SeatOut]


class MessageIn(In):
    text: Annotated[str, checked_text(name="text", max_chars=MAX_TEXT, multiline=True)] = Field(
        min_length=1,
        max_length=MAX_TEXT,
        pattern=TEXT_PATTERN,
        description="Shown in the room's chat; line breaks and tabs allowed, no other control "
        "characters, at least one visible character.",
    )


class MessageOut(BaseModel):
    messageID: int
    userID: None = Field(None, description="Always null: a system message has no sender.")
    userName: str
    text: str
    timestamp: int = Field(description="Milliseconds since the epoch.")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    code: str = Field(examples=["room_not_found"])
    message: str
    fields: list[FieldError] | None = Field(
        None, description="With code invalid_request: every field that was refused, and why."
    )


class MediaPlayIn(In):
    filePathOrURL: str = Field(
        min_length=1,
        max_length=2048,
        pattern=LINE_PATTERN,
        description="A mediaID of the room's files, or an https:// URL of a host the app lists.",
    )
    enableRepeat: bool = False


class MediaInfo(BaseModel):
    width: int
    height: int
    frameRate: float


class MediaFileOut(BaseModel):
    mediaID: str
    name: str
    size: int
    extension: str
    type: Literal["pureAudio", "video"]
    totalDuration: int = Field(description="Milliseconds.")
    info: MediaInfo
    keep: bool


class MediaOut(BaseModel):
    state: Literal["noPlay", "loadReady", "playing", "pausing", "playEnded"]
    mediaID: str | None
    name: str
    type: Literal["pureAudio", "video", "unknown"]
    totalDuration: int
    volume: int
    repeat: bool
    startedBy: str | None = Field(description="The user who started it; null: this API.")
    position: int = Field(description="Milliseconds, now.")
    files: list[MediaFileOut] = Field(description="The room's files, oldest first.")


# Characters here; the services count the UTF-8 bytes (ZIM's limits), which JSON Schema cannot.
PropertyKey = Annotated[
    str, Field(min_length=1, max_length=PROPERTY_KEY_MAX_BYTES, pattern=LINE_PATTERN)
]
PropertyValue = Annotated[
    str, Field(max_length=PROPERTY_VALUE_MAX_BYTES, pattern=rf"^{MULTILINE_CHAR}*$")
]
# pydantic states a key's pattern as patternProperties, which admits any other key with any
# value; the document says what is checked: every key and every value.
PROPERTIES_SCHEMA = WithJsonSchema(
    {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {
            "minLength": 1,
            "maxLength": PROPERTY_KEY_MAX_BYTES,
            "pattern": LINE_PATTERN,
        },
        "additionalProperties": {
            "type": "string",
            "maxLength": PROPERTY_VALUE_MAX_BYTES,
            "pattern": rf"^{MULTILINE_CHAR}*$",
        },
    }
)


class PropertiesIn(In):
    """Strict booleans: 0 or "true" is refused, not taken for a flag."""

    properties: Annotated[dict[PropertyKey, PropertyValue], PROPERTIES_SCHEMA] = Field(
        description="Keys (1-16 bytes of UTF-8) and their values (at most 1,024 bytes): set "
        "all or none. A room holds at most 20 keys and 5,120 bytes of keys and values.",
        examples=[{"song": "Ode to joy"}],
    )
    userID: UserID | None = Field(
        None, description="The owner of the keys this call creates; null: the API."
    )
    isDeleteAfterOwnerLeft: StrictBool = Field(
        False, description="The keys go when their owner leaves (needs a userID)."
    )
    isUpdateOwner: StrictBool = Field(
        False, description="Keys that exist already get this call's owner too."
    )


class PropertiesDeleteIn(In):
    keys: list[PropertyKey] = Field(
        min_length=1, max_length=100, description="Keys to delete; one the room lacks is no error."
    )


class PropertiesOut(BaseModel):
    properties: dict[str, str] = Field(description="The room's properties now.")
    owners: dict[str, str | None] = Field(description="Each key's owner, a user ID; null: the API.")


# Standard base64 (padded), as the socket's room.sendCommand takes it.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def command_max_chars() -> int:
    """The base64 length of the largest command (LIVEAUDIO_ROOM_COMMAND_MAX_BYTES)."""
    return 4 * ceil(settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES / 3)


class CommandIn(In):
    command: str = Field(
        max_length=command_max_chars(),
        pattern=BASE64_PATTERN,
        description="The command's bytes in standard base64: at most "
        f"{settings.LIVEAUDIO_ROOM_COMMAND_MAX_BYTES:,} bytes decoded.",
        examples=["eyJnaWZ0Ijoicm9zZSJ9"],
    )
    userID: UserID | None = Field(
        None,
        description="The senderUserID the room sees: the backend speaks for this user (who "
        "need not be in the room; their own sockets get the command too). Null: the API "
        "itself, senderUserID null.",
    )


class CommandOut(BaseModel):
    roomID: str
    orderKey: int = Field(description="The command's place in the room's one order.")
