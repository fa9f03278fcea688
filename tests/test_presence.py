"""Presence repaired after a crash: members online through a process that is gone go offline
as a disconnect would, and their seats free after the grace period. The rules on rows here;
then real servers killed with kill -9 (one process restarted; two processes on PostgreSQL
and Redis, one of them killed)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rooms.layers import InMemoryChannelLayer
from rooms.models import App, Member, Room, Seat, ServerProcess
from rooms.services.presence import (
    channel_prefix_of,
    presence_repair,
    process_heartbeat,
    process_register,
    seats_release_due,
)
from tests.conftest import add_member
from tests.live_clients import (
    LiveClient,
    demo_app,
    online_users,
    postgres_database,
    scale_out_env,
    seated_users,
    server_process,
)
from tests.servers import LiveServer, start_sharing

ME = "specific.me"


def process(prefix: str, *, host: str = "elsewhere", pid: int = 1, age: float = 0) -> None:
    at = timezone.now() - timedelta(seconds=age)
    ServerProcess.objects.create(
        channel_prefix=prefix, host=host, pid=pid, started_at=at, heartbeat_at=at
    )


def online_through(room: Room, user_id: str, prefix: str, *, seat: int | None = None) -> Member:
    member = add_member(room, user_id)
    Member.objects.filter(pk=member.pk).update(channel_name=f"{prefix}!{user_id}")
    if seat is not None:
        Seat.objects.filter(room=room, index=seat).update(occupant=member)
    return Member.objects.get(pk=member.pk)


def finished_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


# --- the rules, on rows ---------------------------------------------------------------------


@pytest.mark.django_db
def test_members_of_a_process_that_stopped_beating_go_offline_and_keep_their_seat(room) -> None:
    process("specific.gone", age=3600)
    ada = online_through(room, "ada", "specific.gone", seat=1)
    revision = room.revision

    assert presence_repair(me=ME) == {room.pk}

    ada.refresh_from_db()
    assert not ada.online and ada.left_at is not None and ada.channel_name == ""
    assert Seat.objects.get(room=room, index=1).occupant == ada  # until the grace period ends
    room.refresh_from_db()
    assert room.revision > revision  # a change every socket of the room is sent
    assert not ServerProcess.objects.filter(channel_prefix="specific.gone").exists()


@pytest.mark.django_db
def test_members_of_a_live_process_elsewhere_stay_online(room) -> None:
    process("specific.alive", age=1)
    ada = online_through(room, "ada", "specific.alive")
    mine = online_through(room, "bob", ME)

    assert presence_repair(me=ME) == set()

    assert Member.objects.filter(pk__in=[ada.pk, mine.pk], online=True).count() == 2


@pytest.mark.django_db
def test_a_process_on_this_host_whose_pid_is_gone_has_stopped_at_once(room) -> None:
    process("specific.crashed", host=socket.gethostname(), pid=finished_pid())
    ada = online_through(room, "ada", "specific.crashed")

    presence_repair(me=ME)

    ada.refresh_from_db()
    assert not ada.online


@pytest.mark.django_db
def test_this_pid_under_another_prefix_is_the_process_before_a_restart(room) -> None:
    # In a container the restarted server often gets the same pid.
    process("specific.before", host=socket.gethostname(), pid=os.getpid())
    ada = online_through(room, "ada", "specific.before")

    presence_repair(me=ME)

    ada.refresh_from_db()
    assert not ada.online


@pytest.mark.django_db
def test_members_of_a_process_that_stopped_cleanly_go_offline(room) -> None:
    # A stopping process forgets its record: no row at all.
    ada = online_through(room, "ada", "specific.forgotten")

    presence_repair(me=ME)

    ada.refresh_from_db()
    assert not ada.online


@pytest.mark.django_db
def test_seats_held_past_the_grace_period_are_freed(room, settings) -> None:
    away = online_through(room, "ada", "specific.x", seat=1)
    recent = online_through(room, "bob", "specific.x", seat=2)
    long_ago = timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_GRACE_SECONDS + 1)
    Member.objects.filter(pk=away.pk).update(online=False, left_at=long_ago)
    Member.objects.filter(pk=recent.pk).update(online=False, left_at=timezone.now())

    assert seats_release_due() == [room.pk]

    assert Seat.objects.get(room=room, index=1).occupant is None
    assert Seat.objects.get(room=room, index=2).occupant_id == recent.pk


@pytest.mark.django_db
def test_a_room_ends_once_its_host_who_asked_for_it_is_away_past_grace(room, settings) -> None:
    Room.objects.filter(pk=room.pk).update(end_when_host_leaves=True)
    long_ago = timezone.now() - timedelta(seconds=settings.LIVEAUDIO_SEAT_GRACE_SECONDS + 1)
    host = add_member(room, "host-1", role="host", online=False)
    Member.objects.filter(pk=host.pk).update(left_at=long_ago)

    seats_release_due()

    room.refresh_from_db()
    assert not room.is_live


@pytest.mark.django_db
def test_a_process_taken_for_dead_finds_its_record_gone() -> None:
    process_register(channel_prefix=ME)
    assert process_heartbeat(channel_prefix=ME)
    ServerProcess.objects.filter(channel_prefix=ME).delete()  # another process's sweep
    assert not process_heartbeat(channel_prefix=ME)


@pytest.mark.asyncio
async def test_in_memory_channel_names_name_their_process() -> None:
    here, there = InMemoryChannelLayer(), InMemoryChannelLayer()
    mine, theirs = await here.new_channel(), await there.new_channel()
    assert channel_prefix_of(mine) == channel_prefix_of(await here.new_channel())
    assert channel_prefix_of(mine) != channel_prefix_of(theirs)
    assert channel_prefix_of(mine) == f"specific.{here.client_prefix}"


# --- real processes -------------------------------------------------------------------------

FAST = {
    "LIVEAUDIO_PRESENCE_HEARTBEAT_SECONDS": "0.5",
    "LIVEAUDIO_PRESENCE_STALE_SECONDS": "3",
    "LIVEAUDIO_SEAT_GRACE_SECONDS": "3",
}
GRACE = float(FAST["LIVEAUDIO_SEAT_GRACE_SECONDS"])


def kill_9(server: LiveServer) -> None:
    os.kill(server_process(server).pid, signal.SIGKILL)
    server_process(server).wait(5)


async def seat(client: LiveClient, index: int) -> None:
    reply = await client.request("seat.take", index=index)
    assert reply.get("ok"), reply


@pytest.fixture
def lone_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, FAST)
    server.start()
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_after_kill_9_and_a_restart_the_missing_go_offline_then_lose_their_seats(
    lone_server: LiveServer,
) -> None:
    app = demo_app(lone_server)
    ada = await LiveClient.join(lone_server, app, "ada")
    bob = await LiveClient.join(lone_server, app, "bob")
    await seat(ada, 1)
    await seat(bob, 2)
    kill_9(lone_server)

    lone_server.start(set_up=False)
    carol = await LiveClient.join(lone_server, app, "carol")
    state = await carol.wait_state(lambda state: online_users(state) == {"carol"}, timeout=5)
    assert seated_users(state) == {"ada", "bob"}  # the grace period holds, as for a reload
    state = await carol.wait_state(lambda state: not seated_users(state), timeout=GRACE + 3)
    assert online_users(state) == {"carol"}
    await carol.socket.close()


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def two_servers(database: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer, App]]:
    env = {**FAST, **scale_out_env(database)}
    first, second = LiveServer(tmp_path, env), LiveServer(tmp_path, env)
    start_sharing(first, second)
    yield first, second, demo_app(first)
    first.stop()
    second.stop()


@pytest.mark.asyncio
async def test_killing_one_of_two_processes_frees_its_members_as_seen_from_the_other(
    two_servers: tuple[LiveServer, LiveServer, App],
) -> None:
    first, second, app = two_servers
    ada = await LiveClient.join(first, app, "ada")
    bob = await LiveClient.join(second, app, "bob")
    await seat(ada, 1)
    await seat(bob, 2)
    await bob.wait_state(lambda state: seated_users(state) == {"ada", "bob"})

    kill_9(first)

    state = await bob.wait_state(lambda state: online_users(state) == {"bob"}, timeout=5)
    assert seated_users(state) == {"ada", "bob"}
    state = await bob.wait_state(lambda state: seated_users(state) == {"bob"}, timeout=GRACE + 3)
    assert online_users(state) == {"bob"}
    await asyncio.wait_for(bob.socket.close(), 5)
