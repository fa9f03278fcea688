"""Moderation from Django admin. Every action goes through ``rooms.services``, so people in
the room see its effect live, exactly as if a host had done it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms import services
from rooms.models import App, MediaFile, Member, Message, Room, Seat, WebhookDelivery
from rooms.services.rooms import room_check

# room_create's refusals, by code, and the add form's field each belongs to.
ROOM_CREATE_FIELDS = {
    "room_id_invalid": "room_id",
    "room_exists": "room_id",
    "title_invalid": "title",
    "created_by_invalid": "created_by",
    "bad_layout": "seat_rows",
}


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["app_id", "name", "test_mode", "webhook_url"]
    search_fields = ["name", "app_id"]
    fields = [
        "app_id",
        "name",
        "app_sign",
        "allowed_origins",
        "test_mode",
        "webhook_url",
        "remote_media_hosts",
    ]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """What was sent to each app's webhook, and what went wrong: a record, not an editor."""

    list_display = ["id", "event", "app", "attempts", "delivered_at", "failed_at", "created_at"]
    list_filter = [
        "event",
        ("delivered_at", admin.EmptyFieldListFilter),
        ("failed_at", admin.EmptyFieldListFilter),
        "app",
    ]
    search_fields = ["event", "last_error"]
    readonly_fields = [
        "app",
        "event",
        "payload",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "failed_at",
        "last_error",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class SeatInline(admin.TabularInline):
    model = Seat
    fields = ["index", "locked", "occupant"]
    readonly_fields = ["index", "locked", "occupant"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RoomAddForm(forms.ModelForm):
    """A new room, checked by the rule ``room_create`` keeps; an empty layout is the default."""

    class Meta:
        model = Room
        fields = ["app", "room_id", "title", "created_by", "seat_rows", "host_indexes"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("seat_rows", "host_indexes"):
            self.fields[name].required = False
            self.fields[name].help_text += " (empty: the default layout, [4, 4] and [0])"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            room_check(
                room_id=cleaned.get("room_id"),
                title=cleaned.get("title", ""),
                created_by=cleaned.get("created_by", ""),
                seat_rows=cleaned.get("seat_rows") or None,
                host_indexes=cleaned.get("host_indexes") or None,
            )
        except services.ServiceError as exc:
            self.add_error(ROOM_CREATE_FIELDS.get(exc.code), exc.message)
        return cleaned


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["room_id", "title", "app", "created_at", "ended_at"]
    list_filter = [("ended_at", admin.EmptyFieldListFilter), "app"]
    search_fields = ["room_id", "title"]
    readonly_fields = ["created_at", "ended_at"]
    inlines = [SeatInline]
    actions = ["end_now"]

    def get_form(
        self, request: HttpRequest, obj: Room | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = RoomAddForm
            kwargs["fields"] = RoomAddForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: Room | None) -> list:
        return self.inlines if obj is not None else []  # seats come with the room

    def save_model(
        self, request: HttpRequest, obj: Room, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        room = services.room_create(  # its seats too; the form showed every refusal
            app=obj.app,
            room_id=obj.room_id,
            title=obj.title,
            created_by=obj.created_by,
            seat_rows=obj.seat_rows or None,
            host_indexes=obj.host_indexes or None,
        )
        obj.pk, obj.seat_rows, obj.host_indexes = room.pk, room.seat_rows, room.host_indexes

    @admin.action(description="End selected rooms now (everyone in them is disconnected)")
    def end_now(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        for room in queryset:
            services.room_end(room=room, reason="roomEnded")
        self.message_user(request, f"Ended {queryset.count()} room(s).", messages.SUCCESS)


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["user_name", "user_id", "room", "role", "online", "mic_on", "banned"]
    list_filter = ["online", "banned", "role"]
    search_fields = ["user_id", "user_name", "room__room_id"]
    readonly_fields = ["joined_at", "left_at", "online", "channel_name"]
    actions = ["kick", "ban", "unban"]

    @admin.action(description="Kick selected members out of their room")
    def kick(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        for member in queryset.select_related("room"):
            services.member_kick(member=member)
        self.message_user(request, "Kicked.", messages.SUCCESS)

    @admin.action(description="Ban selected members from their room")
    def ban(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        for member in queryset.select_related("room"):
            services.member_ban(member=member)
        self.message_user(request, "Banned.", messages.SUCCESS)

    @admin.action(description="Lift the ban of selected members")
    def unban(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        for member in queryset:
            services.member_unban(member=member)
        self.message_user(request, "Ban lifted.", messages.SUCCESS)


@admin.register(Seat)
class SeatAdmin(admin.ModelAdmin):
    list_display = ["room", "index", "locked", "occupant"]
    list_filter = ["locked"]
    readonly_fields = ["room", "index", "locked", "occupant"]
    actions = ["unlock", "lock", "clear_occupant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Unlock selected seats")
    def unlock(self, request: HttpRequest, queryset: QuerySet[Seat]) -> None:
        self._set_locked(queryset, locked=False)

    @admin.action(description="Lock selected seats")
    def lock(self, request: HttpRequest, queryset: QuerySet[Seat]) -> None:
        self._set_locked(queryset, locked=True)

    def _set_locked(self, queryset: QuerySet[Seat], *, locked: bool) -> None:
        for seat in queryset.select_related("room"):
            services.seat_set_locked(room=seat.room, actor=None, index=seat.index, locked=locked)

    @admin.action(description="Free selected seats (their users stay in the room)")
    def clear_occupant(self, request: HttpRequest, queryset: QuerySet[Seat]) -> None:
        for seat in queryset:
            services.seat_clear(seat=seat)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["text", "sender", "room", "created_at", "deleted"]
    list_filter = ["deleted"]
    search_fields = ["text", "sender__user_name"]
    readonly_fields = ["room", "sender", "text", "attributes", "created_at", "deleted"]
    actions = ["hide"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        # Hard deletion would leave the message on screens; hiding tells every page.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        services.message_delete(message=obj)

    @admin.action(description="Delete selected messages (removed from everyone's view)")
    def hide(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        for message in queryset:
            services.message_delete(message=message)
        self.message_user(request, "Deleted from the room.", messages.SUCCESS)


@admin.register(MediaFile)
class MediaFileAdmin(admin.ModelAdmin):
    """Operators keep a room's files past its end (or let them go: ``purge_media``)."""

    list_display = ["name", "room", "kind", "duration_ms", "size", "keep", "created_at"]
    list_filter = ["keep", "kind"]
    search_fields = ["name", "media_id", "room__room_id"]
    fields = ["keep"]
    actions = ["keep_files", "release_files"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # files come in through the probe, never past it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the room's end (or purge_media) deletes them, bytes and all

    @admin.action(description="Keep the selected files when their room ends")
    def keep_files(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        queryset.update(keep=True)

    @admin.action(description="Let the selected files go with their room (purge_media)")
    def release_files(self, request: HttpRequest, queryset: QuerySet[MediaFile]) -> None:
        queryset.update(keep=False)
