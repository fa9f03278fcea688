from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from rooms import webhooks


class Command(BaseCommand):
    help = (
        "Attempt every due webhook delivery now, as the server's worker does. With --loop, "
        "keep doing it (a worker process of its own)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="run until interrupted")

    def handle(self, *args: object, **options: object) -> None:
        if options["loop"]:
            webhooks.worker.wake()
            try:
                webhooks.worker.join()
            except KeyboardInterrupt:
                webhooks.worker.stop()
            return
        attempted = 0
        while batch := webhooks.deliver_due():
            attempted += batch
        pending = webhooks.pending().count()
        self.stdout.write(f"{attempted} attempt(s) made; {pending} delivery(ies) still pending.")
