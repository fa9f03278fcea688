from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from rooms.models import App, Room
from rooms.services import room_create
from rooms.tokens import token_mint

DEMO_APP_ID = 1234567
DEMO_ROOM_ID = "demo"


class Command(BaseCommand):
    help = "Create the demo user, app and room (idempotent) and print where to open them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--demo-port",
            type=int,
            default=None,
            help="The demo integrator page's port: its origins become allowed for the demo app.",
        )

    def handle(self, *args: object, **options: object) -> None:
        base = str(options["base_url"]).rstrip("/")
        user_model = get_user_model()
        demo, created = user_model.objects.get_or_create(
            username="demo", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            demo.set_password("demo")
            demo.save()
        site_app = App.objects.get(app_id=settings.LIVEAUDIO_SITE_APP_ID)
        site_room = Room.objects.current(app=site_app, room_id=DEMO_ROOM_ID)
        if site_room is None or not site_room.is_live:  # an ended one is started again
            room_create(
                app=site_app, room_id=DEMO_ROOM_ID, title="Demo room", created_by=f"site-{demo.pk}"
            )
        app, _ = App.objects.get_or_create(
            app_id=DEMO_APP_ID, defaults={"name": "Demo integrator", "test_mode": True}
        )
        demo_port = options["demo_port"]
        if demo_port:
            allow_origins(app, [f"http://127.0.0.1:{demo_port}", f"http://localhost:{demo_port}"])
        if not Room.objects.filter(app=app, room_id=DEMO_ROOM_ID, ended_at__isnull=True).exists():
            room_create(app=app, room_id=DEMO_ROOM_ID, title="Embedded demo room")
        # The guest joins the host's room (the site's), not the integrator demo's: the README
        # promises two people in one room.
        guest = token_mint(
            app=site_app,
            room_id=DEMO_ROOM_ID,
            user_id="guest-1",
            user_name="Guest",
            ttl_seconds=24 * 3600,
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "liveaudio is ready.",
                    f"  Lobby:        {base}/   (sign in as demo / demo, the demo room's host)",
                    f"  Demo room:    {base}/rooms/{DEMO_ROOM_ID}/",
                    f"  Admin:        {base}/admin/",
                    f"  As a guest:   {base}/embed/{site_app.app_id}/{DEMO_ROOM_ID}/?"
                    + urlencode({"token": guest}),
                    *(
                        [f"  Integrator:   http://127.0.0.1:{demo_port}/   (the embed SDK demo)"]
                        if demo_port
                        else []
                    ),
                    "",
                ]
            )
        )


def allow_origins(app: App, origins: list[str]) -> None:
    """Add origins to the app's allowed list, keeping the ones it has."""
    missing = [origin for origin in origins if origin not in app.origins]
    if missing:
        app.allowed_origins = "\n".join([*app.origins, *missing])
        app.save(update_fields=["allowed_origins"])
