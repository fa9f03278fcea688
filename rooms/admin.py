"""Moderation from Django admin. Every action goes through ``rooms.services``, so people in
the room see its effect live, exactly as if a host had done it."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms import services
from rooms.models import App, Member, Message, Room, Seat, WebhookDelivery


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["app_id", "name", "test_mode", "webhook_url"]
    search_fields = ["name", "app_id"]
    fields = ["app_id", "name", "app_sign", "allowed_origins", "test_mode", "webhook_url"]
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
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["room_id", "title", "app", "created_at", "ended_at"]
    list_filter = [("ended_at", admin.EmptyFieldListFilter), "app"]
    search_fields = ["room_id", "title"]
    readonly_fields = ["created_at", "ended_at"]
    inlines = [SeatInline]
    actions = ["end_now"]

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
