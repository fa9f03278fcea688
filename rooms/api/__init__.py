"""liveaudio's server HTTP API (``/api/v1/``), for an integrator's backend.

django-ninja builds the OpenAPI schema (``/api/v1/openapi.json``) from the typed endpoints;
``/api/v1/docs`` shows it with the Swagger UI installed with django-ninja. See
docs/http-api.md.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, re_path
from ninja import NinjaAPI
from ninja.throttling import AuthRateThrottle

from rooms.api import errors
from rooms.api.auth import AppSignAuth
from rooms.api.docs import OfflineSwagger
from rooms.api.endpoints import router
from rooms.api.idempotency import idempotent
from rooms.api.parser import BodyParser

# Per app, per server process: far above what a backend needs, low enough to stop a loop.
DEFAULT_RATE = "1200/m"


class AppRateThrottle(AuthRateThrottle):
    """``AuthRateThrottle`` (keyed by the authenticated app) whose rate is the
    ``LIVEAUDIO_API_RATE`` setting when there is one."""

    def __init__(self) -> None:
        super().__init__(DEFAULT_RATE)

    def allow_request(self, request: HttpRequest) -> bool:
        rate = getattr(settings, "LIVEAUDIO_API_RATE", None) or DEFAULT_RATE
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request)


api = NinjaAPI(
    title="liveaudio server API",
    version="1",
    description="Create, list and end rooms, moderate members, send system messages, read "
    "seats, run the media player, read and write room properties, send room commands and mint "
    "room tokens. "
    "HTTP Basic: your appID as user name, your appSign as password. Errors are JSON "
    "{code, message}.",
    urls_namespace="api-v1",
    auth=AppSignAuth(),
    docs=OfflineSwagger(),
    throttle=AppRateThrottle(),
    parser=BodyParser(),
)
errors.install(api)
api.add_router("", router)


def _json_method_refusal(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """django-ninja answers a wrong method with a plain-text 405; ours are JSON too."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and "json" not in response.get("Content-Type", ""):
            allowed = response.get("Allow", "")
            response = JsonResponse(
                {"code": "method_not_allowed", "message": f"Allowed methods: {allowed}."},
                status=405,
            )
            response["Allow"] = allowed
        return response

    return wrapped


def _not_found(request: HttpRequest, rest: str) -> JsonResponse:
    return JsonResponse({"code": "not_found", "message": "No such API endpoint."}, status=404)


def urls() -> tuple[list, str, str]:
    """``api.urls``, with JSON for a wrong method and for a path that is no endpoint, and
    ``Idempotency-Key`` on every POST."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = idempotent(_json_method_refusal(pattern.callback))
    return [*patterns, re_path(r"^(?P<rest>.*)$", _not_found)], app_name, namespace


__all__ = ["api", "urls"]
