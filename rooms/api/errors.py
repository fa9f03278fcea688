"""Every refusal is JSON ``{code, message}`` with a 4xx status, whatever raised it."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from rooms.services import ServiceError
from rooms.text import InvalidText

# The API's one table from a service's refusal to an HTTP status: a conflict with the room's
# state unless listed here. The refusal keeps its code and message.
SERVICE_STATUS = {
    "not_permitted": 403,
    "room_not_found": 404,
    "user_not_found": 404,
    "bad_layout": 400,
    "room_id_invalid": 400,
    "title_invalid": 400,
    "created_by_invalid": 400,
    "message_empty": 400,
    "message_too_long": 400,
    "invalid_text": 400,
    # The media player (docs/http-api.md): a file or URL that is refused.
    "media_not_found": 404,
    "media_bad_url": 400,
    "media_bad_extension": 400,
    "media_remote_not_allowed": 403,
    "media_host_not_allowed": 403,
    "media_address_refused": 403,
    "media_fetch_failed": 502,
    "media_fetch_timeout": 504,
    "media_too_large": 413,
    "media_too_long": 400,
    "media_empty": 400,
    "media_unreadable": 400,
    "media_truncated": 400,
    "media_no_audio": 400,
    # Room properties: a malformed batch; the room's limits are a conflict (409).
    "bad_properties": 400,
    "property_key_invalid": 400,
    "property_value_invalid": 400,
    "property_value_too_long": 400,
    # Room commands: a sender over LIVEAUDIO_ROOM_COMMANDS_PER_SECOND (Retry-After: 1).
    "command_rate_limited": 429,
    "command_too_large": 413,
}
SERVICE_STATUS_DEFAULT = 409


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def install(api: NinjaAPI) -> None:
    def reply(request: HttpRequest, status: int, code: str, message: str, **extra: object):
        body = {"code": code, "message": message, **extra}
        return api.create_response(request, body, status=status)

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return reply(request, exc.status, exc.code, exc.message)

    @api.exception_handler(ServiceError)
    def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
        status = SERVICE_STATUS.get(exc.code, SERVICE_STATUS_DEFAULT)
        response = reply(request, status, exc.code, exc.message)
        if status == 429:  # a per-second limit: worth trying again in a second
            response["Retry-After"] = "1"
        return response

    @api.exception_handler(AuthenticationError)
    def unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = reply(
            request,
            401,
            "unauthorized",
            "Authenticate with HTTP Basic: your appID as user name, your appSign as password.",
        )
        response["WWW-Authenticate"] = 'Basic realm="liveaudio", charset="UTF-8"'
        return response

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields = [{"field": _field(error["loc"]), "message": error["msg"]} for error in exc.errors]
        listed = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return reply(request, 400, "invalid_request", f"Invalid request: {listed}", fields=fields)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return reply(request, 404, "not_found", "No such resource.")

    @api.exception_handler(Throttled)
    def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        response = reply(request, 429, "rate_limited", "Too many requests; slow down.")
        if exc.wait:
            response["Retry-After"] = str(max(1, round(exc.wait)))
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        cause = exc.__cause__  # the body parser's reason, e.g. JSON nested too deep
        message = cause.message if isinstance(cause, InvalidText) else str(exc)
        return reply(request, exc.status_code, "bad_request", message)


def _field(location: tuple | list) -> str:
    """("body", "payload", "roomID") → "roomID"; ("query", "limit") → "limit"."""
    parts = [str(part) for part in location]
    if parts[:1] == ["body"] and len(parts) > 2:
        parts = parts[2:]
    elif len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)
