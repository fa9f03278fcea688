"""What liveaudio stores. Rules live in ``rooms.services``; constraints live here."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import LessThanOrEqual


def new_app_sign() -> str:
    return secrets.token_hex(32)


def default_media_roles() -> list[str]:
    """config.mediaPlayer.rolesCanControl's default: the host (and a co-host standing in)."""
    return ["host"]


def default_property_roles() -> list[str]:
    """config.roomProperties.rolesCanWrite's default: anyone in the room."""
    return ["host", "cohost", "speaker", "audience"]


# The one statement of what a room ID may be: the model, forms, the HTTP API's schema and
# the socket's URLs all use it.
ROOM_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
room_id_validator = RegexValidator(
    ROOM_ID_PATTERN, "Room IDs are 1-64 letters, digits, '_', '.' or '-'."
)


class Role(models.TextChoices):
    HOST = "host", "Host"
    COHOST = "cohost", "Co-host"
    SPEAKER = "speaker", "Speaker"
    AUDIENCE = "audience", "Audience"


class App(models.Model):
    app_id = models.PositiveBigIntegerField(unique=True)
    app_sign = models.CharField(
        max_length=64,
        default=new_app_sign,
        validators=[RegexValidator(r"^[0-9a-f]{64}$", "appSign is 64 lowercase hex characters.")],
    )
    name = models.CharField(max_length=100)
    allowed_origins = models.TextField(
        blank=True, help_text="One origin per line, e.g. https://www.example.com"
    )
    test_mode = models.BooleanField(
        default=False, help_text="Test apps may pass appSign to the browser; never in production."
    )
    webhook_url = models.URLField(
        blank=True, help_text="Where room and member events are POSTed, signed with the appSign."
    )
    remote_media_hosts = models.TextField(
        blank=True,
        help_text="Hosts whose https:// media the rooms may play, one per line "
        "(media.example.com, *.cdn.example.com, or host:port). Empty: no remote media.",
    )

    class Meta:
        ordering = ["app_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.app_id})"

    @property
    def origins(self) -> list[str]:
        return [line.strip() for line in self.allowed_origins.splitlines() if line.strip()]

    @property
    def media_hosts(self) -> list[str]:
        return [h.strip().lower() for h in self.remote_media_hosts.splitlines() if h.strip()]


class RoomQuerySet(models.QuerySet["Room"]):
    def current(self, **lookup: Any) -> Room | None:
        """The room a room ID names now: its live session, else its latest ended one (a room
        ID may be started again once it ended; the old sessions stay, for the admin)."""
        return self.filter(**lookup).order_by(F("ended_at").desc(nulls_first=True), "-pk").first()


class Room(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="rooms")
    room_id = models.CharField(max_length=64, validators=[room_id_validator])
    title = models.CharField(max_length=120, blank=True)
    # What the room is about now, under its title: set by its host (lobby form, in the room).
    topic = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=128, blank=True, help_text="user_id of the creator")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    seat_rows = models.JSONField(default=list, help_text="Seats per row, e.g. [4, 4]")
    host_indexes = models.JSONField(default=list, help_text="Seat indexes only hosts may take")
    # Set once anyone locked or unlocked a seat: a host joining with closeWhenJoining then
    # leaves the room's lock state as it is.
    lock_state_set = models.BooleanField(default=False)
    end_when_host_leaves = models.BooleanField(default=False)
    # Counts the room's changes (bumped in the transaction of each, under the room's row
    # lock): an update read before another one was written is recognised when it arrives late.
    revision = models.PositiveBigIntegerField(default=0, editable=False)
    # The last room command's orderKey: bumped under the room's row lock, so every socket of
    # every server process delivers the room's commands in the one order of their commits.
    command_order = models.PositiveBigIntegerField(default=0, editable=False)
    # config.mediaPlayer.rolesCanControl of the host's config, stored when a host joins.
    media_roles = models.JSONField(
        default=default_media_roles, blank=True, help_text="Roles that control the media player"
    )
    # config.roomProperties.rolesCanWrite of the host's config, stored when a host joins.
    property_roles = models.JSONField(
        default=default_property_roles, blank=True, help_text="Roles that write room properties"
    )

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One live session a room ID; ended ones stay beside it.
            models.UniqueConstraint(
                fields=["app", "room_id"],
                condition=models.Q(ended_at__isnull=True),
                name="one_live_room_per_id",
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.room_id

    @property
    def is_live(self) -> bool:
        return self.ended_at is None

    @property
    def seat_count(self) -> int:
        return sum(self.seat_rows)


class Member(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="members")
    user_id = models.CharField(max_length=128)
    user_name = models.CharField(max_length=64)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AUDIENCE)
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)
    online = models.BooleanField(default=False)
    mic_on = models.BooleanField(default=False)
    banned = models.BooleanField(default=False)
    # The socket that speaks for this member now; a second tab replaces the first.
    channel_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user_id"], name="one_member_per_user_per_room"
            ),
            # Two hosts joining at once: the database lets exactly one of them be the host.
            models.UniqueConstraint(
                fields=["room"], condition=Q(role="host", online=True), name="one_host_online"
            ),
        ]
        indexes = [
            # The member list's pages (rooms.selectors.member_page): the room's present
            # members in the list's order, so a page after a cursor reads a page of rows.
            models.Index(
                fields=["room", "joined_at", "id"],
                condition=Q(online=True, banned=False),
                name="member_list_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_name} ({self.user_id}) in {self.room}"


class Seat(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="seats")
    index = models.PositiveSmallIntegerField()
    locked = models.BooleanField(default=False)
    occupant = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="seats"
    )

    class Meta:
        ordering = ["room", "index"]
        constraints = [
            models.UniqueConstraint(fields=["room", "index"], name="one_seat_per_index"),
            # A member belongs to one room, so this is "one user, at most one seat".
            models.UniqueConstraint(
                fields=["occupant"], condition=Q(occupant__isnull=False), name="one_seat_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"seat {self.index} of {self.room}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    text = models.CharField(max_length=1000)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="message_not_empty"),
        ]

    def __str__(self) -> str:
        return self.text[:40]


class SeatRequest(models.Model):
    """A raised hand: an audience member asks the host for a seat. The queue is ordered."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="seat_requests")
    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="seat_request")
    index = models.SmallIntegerField(null=True, blank=True, help_text="Seat asked for, if any")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.member.user_name} asks for a seat"


class SeatInvitation(models.Model):
    """The host invites an audience member to a seat; one pending invitation per user."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="seat_invitations")
    invitee = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="seat_invitation")
    inviter = models.ForeignKey(
        Member, null=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.invitee.user_name} invited to a seat"


class WebhookDelivery(models.Model):
    """One event for an app's webhook, kept until delivered or given up (retried with back-off)."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True, help_text="given up")
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} for {self.app_id}"


class EmbedSession(models.Model):
    """An embedded user's validated join: token claims, the integrator's config, the parent origin.

    Made by the embed SDK's first request; the iframe and its socket name only the key, so
    neither the token nor the config travels in a URL.
    """

    key = models.CharField(max_length=64, primary_key=True)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="embed_sessions")
    room_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=128)
    user_name = models.CharField(max_length=64)
    role_ceiling = models.CharField(max_length=16, blank=True)
    config = models.JSONField(default=dict)
    parent_origin = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


class ServerProcess(models.Model):
    """One running server process: its members' channel names start with ``channel_prefix``.

    Written at start-up and refreshed every few seconds (``heartbeat_at``); a process that
    stops cleanly deletes its row. Members online through a process whose row is gone, stale,
    or (on this host) whose pid is not alive are repaired by ``rooms.presence``.
    """

    channel_prefix = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["started_at", "pk"]
        verbose_name_plural = "server processes"

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.channel_prefix})"


class IdempotentRequest(models.Model):
    """A POST of the HTTP API sent with an ``Idempotency-Key`` header, and its first answer.

    The same key from the same app to the same endpoint within 24 hours gets that answer
    again and changes nothing (``rooms.api.idempotency``); the row is written in the
    request's own transaction, so it exists if and only if the request's change does.
    """

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="idempotent_requests")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=400, help_text="Method and path")
    body_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["app", "key", "endpoint"], name="one_answer_per_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.endpoint} → {self.status}"


class MediaKind(models.TextChoices):
    PURE_AUDIO = "pureAudio", "Audio"
    VIDEO = "video", "Video"


class MediaFile(models.Model):
    """An uploaded (or fetched) file a room's player may play, probed before it was stored.

    Owned by the room: its bytes (``storage_name`` in Django's default storage) are deleted
    when the room ends, unless an operator set ``keep``.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="media_files")
    media_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    extension = models.CharField(max_length=8)
    kind = models.CharField(max_length=16, choices=MediaKind.choices)
    duration_ms = models.PositiveBigIntegerField()
    info = models.JSONField(default=dict, blank=True, help_text="width, height, frameRate")
    storage_name = models.CharField(max_length=255, unique=True)
    source_url = models.CharField(max_length=2048, blank=True, help_text="Fetched from")
    uploaded_by = models.CharField(max_length=128, blank=True, help_text="user_id; empty: API")
    keep = models.BooleanField(default=False, help_text="Kept when the room ends")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="media_file_not_empty"),
            models.CheckConstraint(condition=Q(duration_ms__gt=0), name="media_file_has_duration"),
            models.CheckConstraint(
                condition=Q(kind__in=MediaKind.values), name="media_file_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.room}"


class MediaUpload(models.Model):
    """A chunked upload in progress: its bytes so far are in the upload directory, not in
    the storage, until the probe accepts the whole file (``rooms.mediafiles``)."""

    upload_id = models.CharField(max_length=32, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="media_uploads")
    user_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    extension = models.CharField(max_length=8)
    size = models.PositiveBigIntegerField()
    received = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="media_upload_not_empty"),
            models.CheckConstraint(
                condition=Q(received__lte=models.F("size")), name="media_upload_within_size"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.received}/{self.size}"


class PlayState(models.TextChoices):
    NO_PLAY = "noPlay", "Nothing loaded"
    LOAD_READY = "loadReady", "Loaded"
    PLAYING = "playing", "Playing"
    PAUSING = "pausing", "Paused"
    PLAY_ENDED = "playEnded", "Ended"


class Playback(models.Model):
    """The room's media player: what plays, where, how loud. One row per room, made on the
    player's first use; it survives a restart (``rooms.services.media``).

    ``position_ms`` is the position at ``position_at``; while playing the position moves on
    from there with the clock. ``key`` names the worker's playout: a new key is a new one
    (play, seek, a resume after a restart).
    """

    room = models.OneToOneField(
        Room, on_delete=models.CASCADE, primary_key=True, related_name="playback"
    )
    # PROTECT: the file of a loaded player cannot go (the player is stopped first).
    media = models.ForeignKey(
        MediaFile, null=True, blank=True, on_delete=models.PROTECT, related_name="playbacks"
    )
    state = models.CharField(max_length=16, choices=PlayState.choices, default=PlayState.NO_PLAY)
    position_ms = models.PositiveBigIntegerField(default=0)
    position_at = models.DateTimeField()
    volume = models.PositiveSmallIntegerField(default=30)
    repeat = models.BooleanField(default=False)
    started_by = models.CharField(max_length=128, blank=True, help_text="user_id; empty: API")
    key = models.CharField(max_length=32, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="Why the last playout failed")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(volume__lte=100), name="playback_volume_0_100"),
            models.CheckConstraint(
                condition=Q(state__in=PlayState.values), name="playback_state_known"
            ),
            # Nothing loaded, or a file and a playout key: never half of it.
            models.CheckConstraint(
                condition=(Q(state="noPlay", media__isnull=True, key=""))
                | (~Q(state="noPlay") & Q(media__isnull=False) & ~Q(key="")),
                name="playback_loaded_or_not",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.state} in {self.room}"


# ZIM's room-attribute limits that are the data's own shape: the database refuses more.
PROPERTY_KEY_MAX_BYTES = 16
PROPERTY_VALUE_MAX_BYTES = 1024


class ByteLength(models.Func):
    """The UTF-8 size of a text column: ZIM's limits are in bytes, and Django's ``Length``
    counts characters."""

    function = "OCTET_LENGTH"
    output_field = models.IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra_context
        )


class RoomProperty(models.Model):
    """One of a room's properties (ZIM's room attributes): a key, its text and who owns it.

    The owner (a user ID, not a member row: the key outlives the member's presence) is the
    only one who may change or delete it without ``isForce``; ``delete_after_owner_left``
    keys go when the owner leaves the room. Counts and the room's total are the services'
    rules (settings), since they span rows.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="properties")
    key = models.CharField(max_length=PROPERTY_KEY_MAX_BYTES)
    value = models.CharField(max_length=PROPERTY_VALUE_MAX_BYTES, blank=True)
    owner_user_id = models.CharField(max_length=128)
    delete_after_owner_left = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["room", "key"]
        verbose_name_plural = "room properties"
        constraints = [
            models.UniqueConstraint(fields=["room", "key"], name="one_property_per_key"),
            models.CheckConstraint(condition=~Q(key=""), name="property_key_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(ByteLength("key"), PROPERTY_KEY_MAX_BYTES),
                name="property_key_at_most_16_bytes",
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(ByteLength("value"), PROPERTY_VALUE_MAX_BYTES),
                name="property_value_at_most_1024_bytes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.room}"
