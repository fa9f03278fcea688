from __future__ import annotations

from django.apps import AppConfig


class RoomsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"
    verbose_name = "Live audio rooms"

    def ready(self) -> None:
        from rooms import signals

        signals.connect()
