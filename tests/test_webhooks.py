"""Webhooks: signed, delivered by the worker after the commit, retried with back-off, given up
after the last attempt. The receiver is a real HTTP server on 127.0.0.1 (a free port)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from rooms import services, webhooks
from rooms.models import App, Room, WebhookDelivery
from rooms.tokens import TokenClaims
from tests.servers import LiveServer

WAIT = 10  # seconds: an upper bound for a condition, never a sleep


class Receiver:
    """An integrator's webhook endpoint: records every request, answers with the next of
    ``statuses`` (the last one repeats)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [200])
        self.requests: list[tuple[Message, bytes]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.changed:
                    receiver.requests.append((self.headers, body))
                    count = len(receiver.requests)
                    receiver.changed.notify_all()
                status = receiver.statuses[min(count, len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        # shutdown() waits for the serving loop's next poll (0.5 s by default) on every test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[tuple[Message, bytes]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"{len(self.requests)} of {count} requests arrived"
            )
            return list(self.requests)

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(app_sign: str, headers: Message, body: bytes) -> dict:
    """What an integrator does (docs/http-api.md): check the signature, then trust the body."""
    timestamp = headers["X-LiveAudio-Timestamp"]
    expected = hmac.new(app_sign.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(headers["X-LiveAudio-Signature"], "sha256=" + expected.hexdigest())
    assert abs(time.time() - int(timestamp)) < 300
    return json.loads(body)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def quick_retries(settings) -> None:
    settings.LIVEAUDIO_WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.LIVEAUDIO_WEBHOOK_BACKOFF_CAP_SECONDS = 0.2
    settings.LIVEAUDIO_WEBHOOK_MAX_ATTEMPTS = 3
    settings.LIVEAUDIO_WEBHOOK_TIMEOUT_SECONDS = 2


@pytest.fixture
def worker(transactional_db, quick_retries) -> Iterator[webhooks.Worker]:
    """The process's worker; stopped (after its current attempt) when the test ends."""
    yield webhooks.worker
    webhooks.worker.stop()


def hooked_app(url: str) -> App:
    return App.objects.create(app_id=777, name="Hooked", webhook_url=url)


def join(room: Room, user_id: str) -> None:
    claims = TokenClaims(
        app_id=room.app.app_id, room_id=room.room_id, user_id=user_id, user_name="Ada", role=None
    )
    services.member_join(room=room, claims=claims, channel_name=f"test.{user_id}")


@pytest.mark.django_db
def test_room_and_member_events_arrive_signed(receiver: Receiver) -> None:
    # Inside the test's transaction nothing commits: the rows are queued but no worker is
    # woken, and deliver_due (the worker's own step) sends them here, in order.
    app = hooked_app(receiver.url)
    room = services.room_create(app=app, room_id="jam", title="Jam", created_by="host-1")
    join(room, "ada")
    member = room.members.get(user_id="ada")
    services.seat_take(member=member, index=2)
    services.member_leave(member=member)
    services.room_end(room=room)

    assert webhooks.deliver_due() == 6
    requests = receiver.wait_for(6)
    bodies = [verify(app.app_sign, headers, body) for headers, body in requests]
    assert [b["event"] for b in bodies] == [
        "room.started",
        "user.joined",
        "seat.changed",
        "seat.changed",
        "user.left",
        "room.ended",
    ]
    assert all(b["appID"] == 777 and b["roomID"] == "jam" for b in bodies)
    assert bodies[0]["data"] == {"title": "Jam", "createdBy": "host-1"}
    assert bodies[1]["data"] == {"userID": "ada", "userName": "Ada"}
    assert bodies[2]["data"] == {"taken": {"2": "ada"}, "untaken": {}}
    assert bodies[3]["data"] == {"taken": {}, "untaken": {"2": "ada"}}
    assert bodies[5]["data"] == {"reason": "roomEnded"}
    assert len({b["deliveryID"] for b in bodies}) == 6
    assert all(isinstance(b["timestamp"], int) for b in bodies)
    assert requests[0][0]["Content-Type"] == "application/json"
    assert WebhookDelivery.objects.filter(delivered_at__isnull=False).count() == 6


@pytest.mark.django_db
def test_someone_who_already_left_is_not_reported_leaving_again(receiver: Receiver) -> None:
    app = hooked_app(receiver.url)
    room = services.room_create(app=app, room_id="jam")
    join(room, "ada")
    member = room.members.get(user_id="ada")
    services.member_disconnect(member=member, channel_name="test.ada")  # gone: user.left
    services.member_ban(member=member)  # banned later, while away
    assert WebhookDelivery.objects.filter(event="user.left").count() == 1


def test_a_failed_delivery_is_retried_with_the_same_body(worker, receiver: Receiver) -> None:
    receiver.statuses = [500, 200]
    app = hooked_app(receiver.url)
    services.room_create(app=app, room_id="jam")
    (first_headers, first), (second_headers, second) = receiver.wait_for(2)
    assert first == second  # same deliveryID: the receiver may dedupe
    verify(app.app_sign, second_headers, second)
    worker.stop()
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 2 and delivery.delivered_at and not delivery.failed_at


def test_a_delivery_is_given_up_after_the_last_attempt(worker, receiver: Receiver) -> None:
    receiver.statuses = [503]
    app = hooked_app(receiver.url)
    services.room_create(app=app, room_id="jam")
    receiver.wait_for(3)
    worker.stop()  # returns once the attempt under way is recorded
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 3 and delivery.failed_at and not delivery.delivered_at
    assert delivery.last_error.startswith("HTTP 503")
    assert webhooks.deliver_due() == 0  # nothing is due any more
    assert len(receiver.requests) == 3


def test_back_off_doubles_up_to_its_cap() -> None:
    policy = webhooks.Policy(max_attempts=8, backoff_base=2, backoff_cap=60, timeout=5)
    assert [policy.backoff(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/hooks", "file:///etc/passwd", "javascript:alert(1)", "http://"]
)
@pytest.mark.django_db
def test_only_http_and_https_urls_are_called(receiver: Receiver, url: str) -> None:
    app = hooked_app(url)  # URLField validation is bypassed on purpose
    services.room_create(app=app, room_id="jam")
    delivery = WebhookDelivery.objects.get()
    assert webhooks.claim(delivery, lease=30)
    delivery.refresh_from_db()
    assert webhooks.attempt(delivery, policy=webhooks.Policy.current()) is False
    delivery.refresh_from_db()
    assert delivery.failed_at and delivery.attempts == 1 and "http" in delivery.last_error


@pytest.mark.django_db
def test_a_receiver_that_never_answers_is_cut_off_at_the_timeout(settings) -> None:
    settings.LIVEAUDIO_WEBHOOK_TIMEOUT_SECONDS = 0.5
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, then says nothing
        app = hooked_app(f"http://127.0.0.1:{silent.getsockname()[1]}/hooks")
        services.room_create(app=app, room_id="jam")
        started = time.monotonic()
        assert webhooks.deliver_due() == 1
        assert time.monotonic() - started < 5
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1 and not delivery.delivered_at and not delivery.failed_at
    assert delivery.last_error == "no answer within 0.5 s"
    assert delivery.next_attempt_at > delivery.created_at  # retried later, with back-off


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.statuses = [302]
    app = hooked_app(receiver.url)
    services.room_create(app=app, room_id="jam")
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert len(receiver.requests) == 1 and delivery.last_error.startswith("HTTP 302")


@pytest.mark.django_db
def test_a_change_that_is_rolled_back_sends_nothing(receiver: Receiver) -> None:
    app = hooked_app(receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.room_create(app=app, room_id="jam")
        raise RuntimeError("the caller failed after the service")
    assert not WebhookDelivery.objects.exists() and not Room.objects.exists()
    assert webhooks.deliver_due() == 0 and not receiver.requests


def test_apps_without_a_webhook_url_queue_nothing(app: App) -> None:
    room = services.room_create(app=app, room_id="jam")
    join(room, "ada")
    services.room_end(room=room)
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_the_deliver_webhooks_command_sends_what_is_due(receiver: Receiver, capsys) -> None:
    # A plain (non-transactional) test: nothing commits, so no worker is woken; the command
    # does the sending.
    app = hooked_app(receiver.url)
    services.room_create(app=app, room_id="jam")
    call_command("deliver_webhooks")
    headers, body = receiver.wait_for(1)[0]
    assert verify(app.app_sign, headers, body)["event"] == "room.started"
    assert "1 attempt(s) made; 0 delivery(ies) still pending." in capsys.readouterr().out
    assert WebhookDelivery.objects.get().delivered_at


@pytest.mark.django_db
def test_admin_shows_deliveries_read_only_and_edits_the_webhook_url(receiver: Receiver) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("op", password="x"))
    app = hooked_app(receiver.url)
    services.room_create(app=app, room_id="jam")
    delivery = WebhookDelivery.objects.get()
    listing = client.get("/admin/rooms/webhookdelivery/").content.decode()
    assert "room.started" in listing
    page = client.get(f"/admin/rooms/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200 and 'name="event"' not in page.content.decode()
    assert client.get("/admin/rooms/webhookdelivery/add/").status_code == 403
    assert 'name="webhook_url"' in client.get(f"/admin/rooms/app/{app.pk}/change/").content.decode()


# --- the real server --------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, env={"LIVEAUDIO_WEBHOOK_BACKOFF_SECONDS": "0.05"})
    live.start()
    yield live
    live.stop()


def test_the_server_process_delivers_what_its_api_changes(
    server: LiveServer, receiver: Receiver
) -> None:
    """daphne, the HTTP API and the worker thread together: an API call's event arrives."""
    server.manage(
        "shell",
        "-c",
        f"from rooms.models import App; App.objects.filter(app_id=1234567)"
        f".update(webhook_url={receiver.url!r})",
    )
    sign = server.app_sign()
    credentials = base64.b64encode(f"1234567:{sign}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/api/v1/rooms",
        data=json.dumps({"roomID": "via-api", "title": "Via API"}).encode(),
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    headers, body = receiver.wait_for(1)[0]
    payload = verify(sign, headers, body)
    assert (payload["event"], payload["roomID"], payload["appID"]) == (
        "room.started",
        "via-api",
        1234567,
    )
    assert payload["data"]["title"] == "Via API"
