from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from rooms.models import App, Member, Room
from rooms.services import room_create
from tests.servers import LiveServer


@pytest.fixture(autouse=True)
def _quick_grace(settings) -> None:
    # Seats of disconnected users free after the grace period; tests wait for it, briefly.
    settings.LIVEAUDIO_SEAT_GRACE_SECONDS = 0.3
    # In this process the media hub runs on a thread, where tests can inspect its peers.
    # Servers started by tests (tests/servers.py) run it in its worker process, the default.
    settings.LIVEAUDIO_MEDIA_PROCESS = False


@pytest.fixture(autouse=True)
def _quick_password_hashing(settings) -> None:
    # Each user made in this process (test clients, the admin) cost a PBKDF2 hash, 0.3 s;
    # no test here is about the hasher. Servers in subprocesses keep the real one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def media_dirs(settings, tmp_path: Path) -> Path:
    """The media player's stored files, uploads and cache, for this test only."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.LIVEAUDIO_MEDIA_UPLOAD_DIR = str(tmp_path / "uploads")
    settings.LIVEAUDIO_MEDIA_CACHE_DIR = str(tmp_path / "cache")
    return tmp_path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real server (daphne, SQLite, the in-memory layer) in a subprocess of this test's
    own, with the demo app and room. Modules that need another kind override it."""
    server = LiveServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app(db) -> App:
    return App.objects.create(app_id=424242, name="Integrator", allowed_origins="https://site.test")


@pytest.fixture
def room(app: App) -> Room:
    return room_create(app=app, room_id="friday-jam", title="Friday jam", created_by="host-1")


def add_member(room: Room, user_id: str, *, role: str = "audience", online: bool = True) -> Member:
    return Member.objects.create(
        room=room,
        user_id=user_id,
        user_name=user_id.title(),
        role=role,
        online=online,
        channel_name=f"test.{user_id}" if online else "",
    )


@pytest_asyncio.fixture
async def settled_timers():
    """No database work of this test's timers runs on into the next test: a timer still in
    its delay is cancelled (its service never runs; waiting it out cost each socket test the
    grace period, 0.35 s), one already running its service is let finish inside the test's
    own event loop."""
    yield
    from rooms.realtime.timers import RoomTimers

    for task in RoomTimers.pending():
        if _still_waiting(task):
            task.cancel()
    deadline = asyncio.get_running_loop().time() + 1
    while RoomTimers.pending() and asyncio.get_running_loop().time() < deadline:
        await asyncio.wait(RoomTimers.pending(), timeout=0.2)
    for task in RoomTimers.pending():
        task.cancel()


def _still_waiting(task: asyncio.Task) -> bool:
    """A timer not started yet, or in its ``asyncio.sleep`` (``RoomTimers._run``'s delay)."""
    coro = task.get_coro()
    if not inspect.iscoroutine(coro):
        return False
    if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        return True
    return getattr(coro.cr_await, "cr_code", None) is asyncio.sleep.__code__
