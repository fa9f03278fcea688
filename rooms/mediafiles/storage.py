"""Where accepted media files live: Django's default storage (``STORAGES["default"]``; the
file system under ``MEDIA_ROOT`` unless a deployment configures another backend).

The media worker decodes a local file. A file-system storage has one (``storage.path``); for
any other backend the file is copied once into ``LIVEAUDIO_MEDIA_CACHE_DIR`` and read there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

# What is stored for a file of this extension, when it is not the file itself: a MIDI file
# is kept as the WAV its synthesizer rendered (rooms.media.midi).
STORED_AS = {"midi": "wav"}


def storage_name_for(*, room_pk: int, media_id: str, extension: str) -> str:
    """One name per media ID: the worker's path is known from the ID and extension alone."""
    return f"liveaudio/rooms/{room_pk}/{media_id}.{STORED_AS.get(extension, extension)}"


def store(source: Path, name: str) -> str:
    """Save a local, probed file under ``name``; returns the name the storage used."""
    with source.open("rb") as file:
        return default_storage.save(name, File(file, name=Path(name).name))


def local_path(name: str) -> Path:
    """The stored file itself where the backend keeps it on this machine, else a copy.

    A backend may have no paths (S3: NotImplementedError) or name one that is not on this
    disk (InMemoryStorage names one under MEDIA_ROOT): either way the worker reads a copy."""
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:
        path = None
    if path is not None and path.is_file():
        return path
    copy = Path(settings.LIVEAUDIO_MEDIA_CACHE_DIR) / name
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_suffix(copy.suffix + ".part")
        with default_storage.open(name, "rb") as remote, partial.open("wb") as local:
            shutil.copyfileobj(remote, local)
        partial.replace(copy)
    return copy


def delete(name: str) -> None:
    default_storage.delete(name)
    cached = Path(settings.LIVEAUDIO_MEDIA_CACHE_DIR) / name
    cached.unlink(missing_ok=True)
