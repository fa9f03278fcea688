"""Server-to-server authentication: HTTP Basic with the appID as user and the appSign as password.

The appSign never reaches a browser in production; the integrator's backend calls this API.
No cookies are read, so CSRF does not apply (django-ninja marks its views exempt).
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest
from ninja.security import HttpBasicAuth

from rooms.api.errors import ApiError
from rooms.models import App

MAX_BODY_BYTES = 16 * 1024  # far above any valid request

# Compared against when the appID is unknown, so a wrong appID and a wrong appSign take the
# same time.
_NO_SIGN = "0" * 64


class AppSignAuth(HttpBasicAuth):
    """``request.auth`` is the ``App`` whose appID and appSign were given."""

    def authenticate(self, request: HttpRequest, username: str, password: str) -> App | None:
        app = None
        if username.isascii() and username.isdigit() and len(username) <= 20:
            app = App.objects.filter(app_id=int(username)).first()
        expected = app.app_sign if app is not None else _NO_SIGN
        matches = hmac.compare_digest(password.encode(), expected.encode())
        if not matches or app is None:
            return None
        _check_size(request)
        return app


def _check_size(request: HttpRequest) -> None:
    """Refuse a large body before it is read (authentication runs before parsing)."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"A request body is at most {MAX_BODY_BYTES} bytes.")
