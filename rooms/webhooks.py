"""Webhooks: room and member events POSTed to an app's ``webhook_url``, signed with its appSign.

A delivery is a ``WebhookDelivery`` row written in the same transaction as the change it tells
of (the service that makes the change queues it), so an event is sent if and only if the change
was stored. After the commit the worker, a daemon thread of the server process started on
first use, sends it; a failed attempt is retried with exponential back-off until
``max_attempts``, then given up (``failed_at``). ``manage.py deliver_webhooks`` does the same
work from a shell or a cron job.

Nothing here runs inside a request or a socket: they only write a row and wake the worker.
Several processes may run workers at once: a delivery is claimed with a conditional UPDATE,
so each attempt is made by one of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from rooms.models import App, Member, Room, WebhookDelivery

logger = logging.getLogger(__name__)

EVENTS = (
    "room.started",
    "room.ended",
    "user.joined",
    "user.left",
    "seat.changed",
    "media.playStateChanged",
    "room.propertiesUpdated",
)
SIGNATURE_HEADER = "X-LiveAudio-Signature"
TIMESTAMP_HEADER = "X-LiveAudio-Timestamp"
MAX_BODY_BYTES = 64 * 1024  # a body larger than this is never sent (given up at once)
MAX_ERROR_CHARS = 500  # WebhookDelivery.last_error
MAX_RESPONSE_BYTES = 1024  # of a failed response, kept in last_error
IDLE_SECONDS = 60.0  # the worker looks again at least this often
RETRY_CYCLE_SECONDS = 1.0  # after a cycle that failed (database busy...)


@dataclass(frozen=True)
class Policy:
    """Retry policy. Each setting may come from Django settings or the environment."""

    max_attempts: int
    backoff_base: float  # seconds before the 2nd attempt; doubled for each later one
    backoff_cap: float  # never longer than this between attempts
    timeout: float  # seconds for one HTTP attempt (connect + answer)

    @classmethod
    def current(cls) -> Policy:
        return cls(
            max_attempts=int(_setting("LIVEAUDIO_WEBHOOK_MAX_ATTEMPTS", 8)),
            backoff_base=float(_setting("LIVEAUDIO_WEBHOOK_BACKOFF_SECONDS", 2.0)),
            backoff_cap=float(_setting("LIVEAUDIO_WEBHOOK_BACKOFF_CAP_SECONDS", 3600.0)),
            timeout=float(_setting("LIVEAUDIO_WEBHOOK_TIMEOUT_SECONDS", 5.0)),
        )

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts: base * 2^(attempts-1), capped."""
        return min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_cap)


def _setting(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return float(value)


# --- queueing (inside the caller's transaction) -----------------------------------------------


def enqueue(*, room: Room, event: str, data: dict) -> WebhookDelivery | None:
    """Queue one event for the room's app, if the app has a webhook URL. Call inside the
    transaction that makes the change; ``wake_on_commit`` sends it once that commits."""
    assert event in EVENTS, event
    app = room.app
    if not app.webhook_url:
        return None
    payload = {
        "event": event,
        "appID": app.app_id,
        "roomID": room.room_id,
        "timestamp": int(time.time() * 1000),
        "data": data,
    }
    return WebhookDelivery.objects.create(
        app=app, event=event, payload=payload, next_attempt_at=timezone.now()
    )


# Room events that an app's webhook hears of, by their webhook name.
ROOM_EVENTS = {
    "onUserJoined": "user.joined",
    "onUserLeft": "user.left",
    "seat.onChanged": "seat.changed",
    "media.onPlayStateChanged": "media.playStateChanged",
    "room.onPropertiesUpdated": "room.propertiesUpdated",
}


def enqueue_room_events(*, room: Room, events: list[dict]) -> None:
    """Inside a room change's transaction: a delivery row for each event the webhook hears
    of, and the worker woken once the change commits."""
    told = [event for event in events if event.get("type") in ROOM_EVENTS]
    if not told or not room.app.webhook_url:
        return  # the common case costs nothing more
    for event in told:
        enqueue(room=room, event=ROOM_EVENTS[event["type"]], data=_room_event_data(room, event))
    transaction.on_commit(wake, robust=True)


def enqueue_room_started(*, room: Room) -> None:
    data = {"title": room.title, "createdBy": room.created_by}
    if enqueue(room=room, event="room.started", data=data):
        transaction.on_commit(wake, robust=True)


def enqueue_room_ended(*, room: Room, reason: str) -> None:
    if enqueue(room=room, event="room.ended", data={"reason": reason}):
        transaction.on_commit(wake, robust=True)


def _room_event_data(room: Room, event: dict) -> dict:
    if event["type"] == "seat.onChanged":
        return {"taken": event["taken"], "untaken": event["untaken"]}
    if event["type"] == "media.onPlayStateChanged":
        return {k: event[k] for k in ("state", "mediaID", "startedBy")}
    if event["type"] == "room.onPropertiesUpdated":
        return {k: event[k] for k in ("setProperties", "deleteProperties")}
    user_id = event["userID"]
    names = Member.objects.filter(room=room, user_id=user_id).values_list("user_name", flat=True)
    return {"userID": user_id, "userName": names.first() or ""}


# --- the body and its signature -------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    """The exact bytes POSTed; the same for every attempt (``deliveryID`` dedupes retries)."""
    document = {"deliveryID": delivery.pk, **delivery.payload}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def signature(app_sign: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(appSign, timestamp + "." + body)>``."""
    mac = hmac.new(app_sign.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- sending ----------------------------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why a URL can never be delivered to, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        return "the webhook URL must be an http:// or https:// URL"
    return None


def _post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> str | None:
    """One attempt: None on a 2xx answer, else what went wrong.

    http.client, not urllib: no proxy from the environment, no redirect followed (a 3xx is a
    failure: the URL to call is the one the app stored), and ``timeout`` bounds the whole
    exchange, so a receiver that answers a byte at a time cannot hold the worker.
    """
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=timeout)
    cut = threading.Event()
    deadline = threading.Timer(timeout, _cut_off, args=(connection, cut))
    deadline.start()
    try:
        connection.request("POST", _target(parts), body=body, headers=headers)
        response = connection.getresponse()
        status, answer = response.status, response.read(MAX_RESPONSE_BYTES)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if cut.is_set() or isinstance(exc, TimeoutError):  # the deadline, or the socket's own
            return f"no answer within {timeout:g} s"
        return f"{type(exc).__name__}: {exc}"  # refused, timed out, bad TLS, broken answer...
    finally:
        deadline.cancel()
        connection.close()
    if 200 <= status < 300:
        return None
    return f"HTTP {status}: {answer.decode(errors='replace')}"


def _target(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _cut_off(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
    cut.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the worker's blocked read at once


def attempt(delivery: WebhookDelivery, *, policy: Policy, now: datetime | None = None) -> bool:
    """Make one attempt of a claimed delivery and record it. True if delivered."""
    app = App.objects.get(pk=delivery.app_id)
    body = body_of(delivery)
    problem = url_problem(app.webhook_url) if app.webhook_url else "the app has no webhook URL"
    if problem is None and len(body) > MAX_BODY_BYTES:
        problem = f"the body is larger than {MAX_BODY_BYTES} bytes"
    final = problem is not None  # nothing a retry could change
    if problem is None:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "liveaudio-webhooks/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(app.app_sign, timestamp, body),
        }
        problem = _post(app.webhook_url, headers, body, policy.timeout)
    now = now or timezone.now()
    attempts = delivery.attempts + 1
    row = WebhookDelivery.objects.filter(pk=delivery.pk)
    if problem is None:
        row.update(attempts=attempts, delivered_at=now, last_error="")
        return True
    error = problem[:MAX_ERROR_CHARS]
    if final or attempts >= policy.max_attempts:
        row.update(attempts=attempts, failed_at=now, last_error=error)
        logger.warning("webhook %s given up after %s attempt(s): %s", delivery.pk, attempts, error)
    else:
        retry_at = now + timedelta(seconds=policy.backoff(attempts))
        row.update(attempts=attempts, next_attempt_at=retry_at, last_error=error)
    return False


def pending() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(delivered_at__isnull=True, failed_at__isnull=True)


def claim(delivery: WebhookDelivery, *, lease: float) -> bool:
    """Take a due delivery for one attempt. If this process dies mid-attempt, another
    attempt is made once the lease has passed (a receiver may see a delivery twice)."""
    taken = (
        pending()
        .filter(pk=delivery.pk, next_attempt_at=delivery.next_attempt_at)
        .update(next_attempt_at=timezone.now() + timedelta(seconds=lease))
    )
    return taken == 1


def deliver_due(*, policy: Policy | None = None, limit: int = 50) -> int:
    """Attempt every due delivery (oldest first, at most ``limit``); return how many were."""
    policy = policy or Policy.current()
    due = pending().filter(next_attempt_at__lte=timezone.now()).order_by("next_attempt_at", "id")
    done = 0
    for delivery in list(due[:limit]):
        if claim(delivery, lease=policy.timeout + 30):
            attempt(delivery, policy=policy)
            done += 1
    return done


def seconds_until_next() -> float | None:
    upcoming = pending().order_by("next_attempt_at").values_list("next_attempt_at", flat=True)
    first = upcoming.first()
    if first is None:
        return None
    return max((first - timezone.now()).total_seconds(), 0.0)


# --- the worker thread ------------------------------------------------------------------------


class Worker:
    """One daemon thread per process, started by the first ``wake``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="liveaudio-webhooks", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        """Stop after the current attempt (tests; a process exits without it)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout)

    def join(self) -> None:
        """Wait for the thread (``deliver_webhooks --loop``: the thread is the program)."""
        while (thread := self._thread) is not None and thread.is_alive():
            thread.join(1)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            delay = self._cycle()
            if not self._stop.is_set():
                self._wake.wait(IDLE_SECONDS if delay is None else min(delay, IDLE_SECONDS))

    def _cycle(self) -> float | None:
        close_old_connections()
        try:
            while deliver_due() and not self._stop.is_set():
                pass
            return seconds_until_next()
        except Exception:  # the database was busy or away: try again soon, never die
            logger.exception("webhook worker cycle failed")
            return RETRY_CYCLE_SECONDS
        finally:
            connection.close()


worker = Worker()


def wake() -> None:
    worker.wake()
