"""ASGI entry point: Django for HTTP, the room consumer for websockets (daphne serves both)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveaudio.settings")
# Django must be set up before the consumer (and its models) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms import lifecycle  # noqa: E402
from rooms.routing import websocket_urlpatterns  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The socket checks its Origin itself (rooms/realtime/admission.py): this server's
        # own pages, or the app's allowed origins; a refusal is a close code, not a bare 403.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
# Every request and socket in flight is known, for a graceful stop on SIGTERM; under daphne,
# the process registers its presence at start-up (rooms/lifecycle.py).
application = lifecycle.ServerLifecycle(router)
lifecycle.serve_under_daphne()
