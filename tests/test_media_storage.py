"""Media files in a storage backend without local paths (Django's InMemoryStorage standing
for S3 and the like): kept there, decoded by the player from a local copy made once, and
gone from both when deleted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from channels.db import database_sync_to_async as db
from django.core.files.storage import default_storage

from rooms.media.player import MediaPlayer, PlaybackSpec
from rooms.mediafiles.storage import delete, local_path, storage_name_for
from tests.media_files import make_tone_file
from tests.media_uploads import stored_media

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("media_dirs", "remote_storage"),
]


@pytest.fixture
def remote_storage(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


async def test_a_storage_without_paths_is_played_from_a_local_copy(room, media_dirs) -> None:
    media = await db(stored_media)(room, make_tone_file(media_dirs / "song.mp3"))
    name = storage_name_for(room_pk=room.pk, media_id=media.media_id, extension="mp3")
    assert default_storage.exists(name)
    # Not on this disk: the path it names (under MEDIA_ROOT) holds nothing, as for S3 & co.
    assert not Path(default_storage.path(name)).exists()

    copy = local_path(name)
    assert copy.is_relative_to(media_dirs / "cache") and copy.read_bytes()
    assert local_path(name) == copy  # made once
    spec = PlaybackSpec(key="k", path=str(copy), start_ms=0, paused=False, repeat=False, volume=100)
    player = MediaPlayer(spec)
    try:
        frame = None
        for _ in range(500):
            frame = player.pull()
            if frame is not None and np.abs(frame.pcm).max() > 1000:
                break
            await asyncio.sleep(0.01)  # the decoder thread fills its read-ahead
        assert frame is not None and np.abs(frame.pcm).max() > 1000  # the tone, decoded
    finally:
        await player.close()

    delete(name)
    assert not default_storage.exists(name) and not copy.exists()
