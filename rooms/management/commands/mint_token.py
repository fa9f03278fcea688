from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.models import App
from rooms.tokens import DEFAULT_TTL_SECONDS, token_mint


class Command(BaseCommand):
    help = "Mint a room token with an app's appSign (what an integrator's backend does)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app-id", type=int, required=True)
        parser.add_argument("--room-id", required=True)
        parser.add_argument("--user-id", required=True)
        parser.add_argument("--user-name", required=True)
        parser.add_argument("--role", choices=["host", "cohost", "speaker", "audience"])
        parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            app = App.objects.get(app_id=options["app_id"])
        except App.DoesNotExist as exc:
            raise CommandError(f"No app with appID {options['app_id']}.") from exc
        try:
            token = token_mint(
                app=app,
                room_id=options["room_id"],
                user_id=options["user_id"],
                user_name=options["user_name"],
                role=options["role"],
                ttl_seconds=options["ttl"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
