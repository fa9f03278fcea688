"""Fixtures for the media engine tests: real aiortc peers on 127.0.0.1, no Django."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import media_helpers
import pytest
import pytest_asyncio
from media_helpers import Room

from rooms.media import install_fast_audio_level, restrict_host_candidates_to_loopback


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> None:
    """Every ICE agent in the test process offers 127.0.0.1 and nothing else."""
    restrict_host_candidates_to_loopback()
    install_fast_audio_level()


@pytest.fixture(autouse=True)
def count_only_this_tests_threads() -> None:
    """Leak checks count the threads a test started, not those an earlier module left."""
    media_helpers.threads_before_test = set(threading.enumerate())


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    room = Room()
    room.mixer.start()
    try:
        yield room
    finally:
        await room.close()
