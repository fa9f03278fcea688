"""A room's media files: chunked uploads, URLs fetched for ``media.play``, and their end.

Nothing reaches the storage before the probe (``rooms.mediafiles.probe``) accepted the whole
file: an upload's bytes are assembled in ``LIVEAUDIO_MEDIA_UPLOAD_DIR``, a URL's download
too, and a refused file leaves nothing behind, neither bytes nor rows. The probe and the
fetch run outside any transaction (on SQLite a transaction holds the one write lock), the
rows they lead to are written under the room's lock.

Only a member who may control the player (``rooms.services.media.may_control_media``)
uploads or plays a URL; the checks run before any byte is kept or fetched.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rooms import config as room_config
from rooms import events, player
from rooms.mediafiles import fetch, storage
from rooms.mediafiles.probe import probe
from rooms.models import MediaFile, MediaUpload, Member, Playback, PlayState, Room
from rooms.services.common import ServiceError, lock_room
from rooms.services.media import media_file_in, media_play, require_media_control
from rooms.text import InvalidText, clean_text

log = logging.getLogger(__name__)

MAX_NAME = 255
ALIASES = {"mid": "midi"}  # the extension a file may carry -> the seed's name for it


def allowed_extensions(config: dict | None) -> set[str]:
    """The seed's list, within the uploader's ``config.mediaPlayer.allowedExtensions``."""
    seed = set(room_config.MEDIA_EXTENSIONS)
    if config is None:
        return seed
    return seed & set(config.get("mediaPlayer", {}).get("allowedExtensions", seed))


def extension_of(name: str, allowed: set[str]) -> str:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    extension = ALIASES.get(suffix, suffix)
    if extension not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise ServiceError(
            "media_bad_extension", f"Files of this type are not accepted here (allowed: {listed})."
        )
    return extension


# --- uploads ---------------------------------------------------------------------------------


def upload_start(
    *, room: Room, member: Member, name: object, size: object, allowed: set[str]
) -> MediaUpload:
    name = _clean_name(name)
    extension = extension_of(name, allowed)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ServiceError("bad_request", "size must be the file's length in bytes.")
    _check_size(size)
    with transaction.atomic():
        room = lock_room(room)
        require_media_control(member, room)
        _drop_stale_uploads(room)
        if (
            MediaUpload.objects.filter(room=room).count()
            >= settings.LIVEAUDIO_MEDIA_UPLOADS_PER_ROOM
        ):
            raise ServiceError(
                "media_too_many_uploads", "Too many uploads are under way in this room."
            )
        upload = MediaUpload.objects.create(
            upload_id=secrets.token_hex(12),
            room=room,
            user_id=member.user_id,
            name=name,
            extension=extension,
            size=size,
        )
        _part(upload.upload_id).parent.mkdir(parents=True, exist_ok=True)
        _part(upload.upload_id).write_bytes(b"")
    return upload


def upload_chunk(*, room: Room, member: Member, upload_id: str, offset: int, data: bytes) -> int:
    """Bytes at ``offset`` (where the upload is: chunks come in order); returns the count."""
    if len(data) > settings.LIVEAUDIO_MEDIA_CHUNK_BYTES:
        raise ServiceError(
            "media_chunk_too_large",
            f"A chunk may be at most {settings.LIVEAUDIO_MEDIA_CHUNK_BYTES} bytes.",
        )
    with transaction.atomic():
        upload = _upload(room, member, upload_id, lock=True)
        if offset != upload.received:
            raise ServiceError(
                "media_bad_offset", f"The upload is at byte {upload.received}, not {offset}."
            )
        if upload.received + len(data) > upload.size:
            raise ServiceError("media_too_large", "The chunk goes past the file's stated size.")
        with _part(upload_id).open("r+b") as part:
            part.seek(offset)
            part.write(data)
        upload.received += len(data)
        upload.save(update_fields=["received"])
    return upload.received


def upload_finish(*, room: Room, member: Member, upload_id: str) -> MediaFile:
    """Probe the whole file; keep it (a ``MediaFile``) or refuse it. Either way the upload
    is over: a refused file is deleted, and its upload with it."""
    with transaction.atomic():
        upload = _upload(room, member, upload_id, lock=True)
        if upload.received != upload.size:
            raise ServiceError(
                "media_upload_incomplete",
                f"The upload has {upload.received} of {upload.size} bytes.",
            )
        upload.delete()  # claimed: a second finish finds nothing
    part = _part(upload_id)
    try:
        return media_accept(
            room=room,
            actor=member,
            path=part,
            name=upload.name,
            extension=upload.extension,
        )
    finally:
        part.unlink(missing_ok=True)


def upload_cancel(*, room: Room, member: Member, upload_id: str) -> None:
    with transaction.atomic():
        _upload(room, member, upload_id, lock=True).delete()
    _part(upload_id).unlink(missing_ok=True)


def _upload(room: Room, member: Member, upload_id: str, *, lock: bool) -> MediaUpload:
    uploads = MediaUpload.objects.select_for_update() if lock else MediaUpload.objects
    upload = uploads.filter(upload_id=upload_id, room=room, user_id=member.user_id).first()
    if upload is None:
        raise ServiceError("media_upload_not_found", "There is no such upload.")
    return upload


def _part(upload_id: str) -> Path:
    if not upload_id.isalnum():  # a hex token: never a path of its own
        raise ServiceError("media_upload_not_found", "There is no such upload.")
    return Path(settings.LIVEAUDIO_MEDIA_UPLOAD_DIR) / f"{upload_id}.part"


def _drop_stale_uploads(room: Room) -> None:
    ttl = timedelta(seconds=settings.LIVEAUDIO_MEDIA_UPLOAD_TTL_SECONDS)
    stale = MediaUpload.objects.filter(created_at__lt=timezone.now() - ttl)
    for upload_id in list(stale.values_list("upload_id", flat=True)):
        _part(upload_id).unlink(missing_ok=True)
    stale.delete()


def _clean_name(name: object) -> str:
    try:
        cleaned = clean_text(name, name="name", max_chars=MAX_NAME, min_chars=1)
    except InvalidText as exc:
        raise ServiceError("bad_request", exc.message) from exc
    return cleaned.rsplit("/", 1)[-1].rsplit("\\", 1)[-1] or "media"


def _check_size(size: int) -> None:
    if size == 0:
        raise ServiceError("media_empty", "The file is empty.")
    limit = settings.LIVEAUDIO_MEDIA_MAX_BYTES
    if size > limit:
        raise ServiceError("media_too_large", f"The file is larger than {limit / 1024**2:g} MB.")


# --- accepting a file ------------------------------------------------------------------------


def media_accept(
    *,
    room: Room,
    actor: Member | None,
    path: Path,
    name: str,
    extension: str,
    source_url: str = "",
) -> MediaFile:
    """Probe a local file (a MIDI file: the WAV it renders to) and store it for the room."""
    _check_size(path.stat().st_size)
    media_id = secrets.token_hex(12)
    playable = path
    if extension == "midi":
        playable = path.with_name(f"{media_id}.rendered.wav")
    try:
        if extension == "midi":
            _render_midi(path, playable)
        max_ms = int(settings.LIVEAUDIO_MEDIA_MAX_DURATION_SECONDS * 1000)
        probed = probe(playable, max_duration_ms=max_ms)
        stored = storage.store(
            playable,
            storage.storage_name_for(room_pk=room.pk, media_id=media_id, extension=extension),
        )
    finally:
        if playable != path:
            playable.unlink(missing_ok=True)
    try:
        with transaction.atomic():
            room = lock_room(room)
            require_media_control(actor, room)
            return MediaFile.objects.create(
                room=room,
                media_id=media_id,
                name=name,
                size=path.stat().st_size,
                extension=extension,
                kind=probed.kind,
                duration_ms=probed.duration_ms,
                info=probed.info,
                storage_name=stored,
                source_url=source_url,
                uploaded_by=actor.user_id if actor else "",
            )
    except BaseException:
        storage.delete(stored)  # refused after all (the room ended, the role changed)
        raise


def _render_midi(source: Path, rendered: Path) -> None:
    from rooms.media.midi import MidiError, render_midi

    try:
        render_midi(source, rendered)
    except MidiError as exc:
        raise ServiceError("media_unreadable", f"The MIDI file could not be played: {exc}") from exc


# --- what media.play names -------------------------------------------------------------------


def media_source(
    *, room: Room, actor: Member | None, source: str, allowed: set[str] | None = None
) -> MediaFile:
    """A mediaID of this room's files, or an ``https://`` URL, fetched and probed now (when
    the room's app lists remote media hosts)."""
    if "://" not in source:
        return media_file_in(room, source)
    with transaction.atomic():
        room = lock_room(room)
        require_media_control(actor, room)
    hosts = room.app.media_hosts
    if not hosts:
        raise ServiceError("media_remote_not_allowed", "This app does not allow remote media.")
    fetch.check_url(source, hosts)
    extension = extension_of(fetch.file_name(source), allowed or allowed_extensions(None))
    download = Path(settings.LIVEAUDIO_MEDIA_UPLOAD_DIR) / f"{secrets.token_hex(12)}.fetch"
    download.parent.mkdir(parents=True, exist_ok=True)
    try:
        fetched = fetch.fetch(
            source, allowed_hosts=hosts, dest=download, max_bytes=settings.LIVEAUDIO_MEDIA_MAX_BYTES
        )
        return media_accept(
            room=room,
            actor=actor,
            path=download,
            name=fetched.name[:MAX_NAME],
            extension=extension,
            source_url=source,
        )
    finally:
        download.unlink(missing_ok=True)


def media_background_start(*, room: Room, member: Member, path: str, repeat: bool) -> None:
    """config.backgroundMedia, as the host joins: started unless something is loaded."""
    playback = Playback.objects.filter(room=room).first()
    if playback is not None and playback.state != PlayState.NO_PLAY:
        return
    media = media_source(room=room, actor=member, source=path)
    media_play(room=room, actor=member, media=media, repeat=repeat)


# --- the room's end --------------------------------------------------------------------------


def room_media_end(room: Room) -> None:
    """Inside the room's end: the player stops and unloads, uploads in progress go, and so
    do the files no operator kept (their bytes once the end commits)."""
    Playback.objects.filter(room=room).update(media=None, state=PlayState.NO_PLAY, key="")
    for upload_id in list(room.media_uploads.values_list("upload_id", flat=True)):
        _part(upload_id).unlink(missing_ok=True)
    room.media_uploads.all().delete()
    names = list(room.media_files.filter(keep=False).values_list("storage_name", flat=True))
    room.media_files.filter(keep=False).delete()
    transaction.on_commit(lambda: _delete_stored(names), robust=True)
    events.after_commit(lambda: player.apply_stored(room.pk))  # the worker lets go


def media_files_purge() -> int:
    """Operators (``manage.py purge_media``): the files of ended rooms that are not kept,
    for rooms that ended before this code deleted them or whose deletion failed."""
    files = MediaFile.objects.filter(room__ended_at__isnull=False, keep=False)
    names = list(files.values_list("storage_name", flat=True))
    with transaction.atomic():
        Playback.objects.filter(media__in=files).update(media=None, state=PlayState.NO_PLAY, key="")
        files.delete()
    _delete_stored(names)
    return len(names)


def _delete_stored(names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except Exception as exc:  # the storage is away: purge_media deletes it later
            log.warning("media file %s was not deleted: %r", name, exc)
