from __future__ import annotations

from django.core.management.base import BaseCommand

from rooms.services.mediafiles import media_files_purge


class Command(BaseCommand):
    help = (
        "Delete the media files of ended rooms that no operator keeps (the room's end deletes "
        "them itself; this catches files released later, or a storage that was away)."
    )

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(f"{media_files_purge()} media file(s) deleted.")
