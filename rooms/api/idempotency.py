"""``Idempotency-Key``: a POST the integrator's backend retries is done once.

The same key from the same app to the same endpoint (method and path) within 24 hours gets
the first answer again, with ``Idempotent-Replayed: true``, and changes nothing. The same
key with a different body is refused (422): a key names one request. Only a success is
kept: a refusal changed nothing, so sending it again is safe and may succeed later.

The stored answer is written in the request's own transaction, so it exists if and only if
the change does; the app's row is locked for that transaction, so two retries racing each
other run one after the other, the second replaying the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from rooms.api.auth import AppSignAuth
from rooms.api.errors import ApiError
from rooms.models import App, IdempotentRequest
from rooms.text import InvalidText, clean_text

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
KEPT_FOR = timedelta(hours=24)


def idempotent(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap an API URL's view: a POST with an ``Idempotency-Key`` is done at most once."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return view(request, *args, **kwargs)
        app = _authenticated_app(request)
        if app is None:  # the API itself answers 401 (or 413)
            return view(request, *args, **kwargs)
        try:
            clean_text(key, name=HEADER, max_chars=MAX_KEY_CHARS, min_chars=1)
        except InvalidText as exc:
            return _refusal(400, "invalid_request", exc.message)
        if not key.isascii():  # HTTP headers carry Latin-1 at best: keep keys portable
            return _refusal(400, "invalid_request", f"{HEADER} must be printable ASCII.")
        return _once(view, request, app, key, args, kwargs)

    return wrapped


def _once(
    view: Callable[..., HttpResponse],
    request: HttpRequest,
    app: App,
    key: str,
    args: tuple,
    kwargs: dict,
) -> HttpResponse:
    endpoint = f"{request.method} {request.path}"[:400]
    digest = hashlib.sha256(request.body).hexdigest()
    with transaction.atomic():
        App.objects.select_for_update().get(pk=app.pk)  # keyed requests of an app, one at a time
        now = timezone.now()
        IdempotentRequest.objects.filter(app=app, created_at__lt=now - KEPT_FOR).delete()
        stored = IdempotentRequest.objects.filter(app=app, key=key, endpoint=endpoint).first()
        if stored is not None:
            return _replay(stored, digest)
        response = view(request, *args, **kwargs)
        if 200 <= response.status_code < 300:
            IdempotentRequest.objects.create(
                app=app,
                key=key,
                endpoint=endpoint,
                body_sha256=digest,
                status=response.status_code,
                content_type=response.get("Content-Type", "application/json"),
                body=response.content.decode("utf-8"),
                created_at=now,
            )
        return response


def _replay(stored: IdempotentRequest, digest: str) -> HttpResponse:
    if stored.body_sha256 != digest:
        return _refusal(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was sent with another body to this endpoint; "
            "a new request needs a new key.",
        )
    response = HttpResponse(stored.body, status=stored.status, content_type=stored.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def _authenticated_app(request: HttpRequest) -> App | None:
    try:
        return AppSignAuth()(request)
    except ApiError:  # a body too large: the API answers it
        return None


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)
