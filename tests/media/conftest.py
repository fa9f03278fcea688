"""Fixtures for the media engine tests: real aiortc peers on 127.0.0.1, no Django."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from media_helpers import Room

from rooms.media import install_fast_audio_level, restrict_host_candidates_to_loopback


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> None:
    """Every ICE agent in the test process offers 127.0.0.1 and nothing else."""
    restrict_host_candidates_to_loopback()
    install_fast_audio_level()


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    room = Room()
    room.mixer.start()
    try:
        yield room
    finally:
        await room.close()
