"""WSGI entry point, for tools that want one; the product runs on ASGI (daphne)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveaudio.settings")
application = get_wsgi_application()
