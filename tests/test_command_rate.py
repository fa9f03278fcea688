"""Room commands are rate-limited per sender (a user in a room), not per socket: a reconnect,
a second tab or the HTTP API speaking for the user does not start a fresh allowance; in
scale-out mode the count lives in Redis, shared by every process."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from rooms import services
from rooms.models import App, Room
from rooms.services import sender_rate
from rooms.services.sender_rate import LocalRates, RedisRates
from tests.socket_client import Participant
from tests.test_api import call, socket_test
from tests.test_api_idempotency import KeyedApi

REDIS = "redis://127.0.0.1:6379/0"
PER_SECOND = settings.LIVEAUDIO_ROOM_COMMANDS_PER_SECOND


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """The process's counts on a clock that moves only when the test says so: a socket
    test's reconnect then happens "within the second" however slow the machine."""
    clock = Clock()
    rates = LocalRates(clock=clock)
    monkeypatch.setattr(sender_rate, "_rates_for", lambda url, prefix: rates)
    yield clock


def test_a_sender_gets_the_limit_in_any_one_second() -> None:
    clock = Clock()
    rates = LocalRates(clock=clock)
    assert all(rates.allow(1, "ann", 3) for _ in range(3))
    assert not rates.allow(1, "ann", 3)
    assert rates.allow(1, "bob", 3) and rates.allow(2, "ann", 3)  # other senders, rooms
    clock.now += 0.5
    assert not rates.allow(1, "ann", 3)  # refused, and not counted:
    clock.now += 0.5
    assert rates.allow(1, "ann", 3)  # a second after the first ones, room again


def test_idle_senders_are_forgotten() -> None:
    clock = Clock()
    rates = LocalRates(clock=clock)
    for n in range(50):
        rates.allow(1, f"u{n}", 3)
    clock.now += 60
    rates.allow(1, "last", 3)
    assert list(rates._windows) == [(1, "last")]


def test_two_processes_count_one_window_in_redis() -> None:
    prefix = f"test-rate-{uuid.uuid4().hex[:8]}"
    first, second = RedisRates(REDIS, prefix), RedisRates(REDIS, prefix)
    assert all(first.allow(7, "ann", 4) for _ in range(2))
    assert all(second.allow(7, "ann", 4) for _ in range(2))
    assert not first.allow(7, "ann", 4) and not second.allow(7, "ann", 4)
    assert second.allow(7, "bob", 4) and first.allow(8, "ann", 4)


def test_without_redis_a_process_counts_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    rates = RedisRates("redis://127.0.0.1:1/0", "nowhere")  # nothing listens on port 1
    assert rates.allow(7, "ann", 3)
    assert "counted in this process only" in caplog.text

    def not_asked(**_: object) -> None:
        raise AssertionError("Redis is asked again only a few seconds after it failed")

    rates._script = not_asked  # type: ignore[assignment]
    assert rates.allow(7, "ann", 3) and rates.allow(7, "ann", 3)
    assert not rates.allow(7, "ann", 3)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def send(person: Participant, room: Room) -> dict:
    return await person.request("room.sendCommand", roomID=room.room_id, command=b64(b"x"))


async def flood(person: Participant, room: Room) -> None:
    for _ in range(PER_SECOND):
        assert (await send(person, room))["type"] == "reply"
    refused = await send(person, room)
    assert (refused["type"], refused["code"]) == ("error", "command_rate_limited")


@socket_test
async def test_a_reconnect_does_not_bring_a_fresh_allowance(room: Room, frozen: Clock) -> None:
    ann = await Participant.join(room, "ann")
    await flood(ann, room)
    await ann.leave()
    again = await Participant.join(room, "ann")
    refused = await send(again, room)
    assert (refused["type"], refused["code"]) == ("error", "command_rate_limited")
    bob = await Participant.join(room, "bob")  # another sender is not held back
    assert (await send(bob, room))["type"] == "reply"
    frozen.now += 1.0
    assert (await send(again, room))["type"] == "reply"
    for person in (again, bob):
        await person.leave()


@socket_test
async def test_the_api_speaking_for_a_user_spends_the_users_allowance(
    room: Room, frozen: Clock
) -> None:
    api = KeyedApi(room.app)
    ann = await Participant.join(room, "ann")
    for _ in range(PER_SECOND):
        sent = await call(
            api, "POST", f"/rooms/{room.room_id}/commands", {"command": "eA==", "userID": "ann"}
        )
        assert sent.status_code == 200
    refused = await send(ann, room)
    assert (refused["type"], refused["code"]) == ("error", "command_rate_limited")
    await ann.leave()


@pytest.mark.django_db
def test_the_service_refuses_past_the_limit_before_anything_is_sent(
    app: App, frozen: Clock
) -> None:
    room = services.room_create(app=app, room_id="rate")
    for _ in range(PER_SECOND):
        services.command_send_by_api(room=room, command=b"x", user_id="ann")
    with pytest.raises(services.ServiceError) as refused:
        services.command_send_by_api(room=room, command=b"x", user_id="ann")
    assert refused.value.code == "command_rate_limited"
    assert Room.objects.values_list("command_order", flat=True).get(pk=room.pk) == PER_SECOND
