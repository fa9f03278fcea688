"""Uploads of real media files over the HTTP upload wire: what is kept, what is refused, and
that a refusal leaves nothing stored and the playback as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from rooms.models import MediaFile, MediaUpload, Room
from rooms.selectors import media_state
from rooms.services import media_play
from tests.conftest import add_member
from tests.media_files import make_midi_file, make_tone_file
from tests.media_uploads import ORIGIN, call, page_token, upload, uploads_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _dirs(media_dirs: Path) -> None:
    pass


@pytest.fixture
def host_token(room: Room) -> str:
    add_member(room, "host-1", role="host")
    return page_token(room, "host-1")


def stored_files(media_dirs: Path) -> list[Path]:
    return [p for p in (media_dirs / "media").rglob("*") if p.is_file()]


def nothing_kept(media_dirs: Path) -> bool:
    leftovers = [p for p in (media_dirs / "uploads").rglob("*") if p.is_file()]
    return (
        not MediaFile.objects.exists()
        and not MediaUpload.objects.exists()
        and not (stored_files(media_dirs) or leftovers)
    )


@pytest.mark.parametrize(
    ("suffix", "video", "kind"),
    [
        (".wav", False, "pureAudio"),
        (".mp3", False, "pureAudio"),
        (".mp4", True, "video"),
        (".ogg", False, "pureAudio"),
        (".aac", False, "pureAudio"),
    ],
)
def test_an_upload_is_probed_and_kept(
    client: Client, room, host_token, media_dirs, suffix, video, kind
) -> None:
    path = make_tone_file(media_dirs / f"song{suffix}", video=video)
    answer = upload(client, room, host_token, path)
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["name"], body["extension"], body["type"]) == (path.name, suffix[1:], kind)
    assert abs(body["totalDuration"] - 10_000) <= 100
    assert body["size"] == path.stat().st_size
    if video:
        assert body["info"] == {"width": 64, "height": 48, "frameRate": 10.0}
    stored = MediaFile.objects.get(media_id=body["mediaID"])
    assert stored.uploaded_by == "host-1" and stored.room == room
    assert [p.read_bytes() for p in stored_files(media_dirs)] == [path.read_bytes()]
    assert not MediaUpload.objects.exists()


def test_a_midi_file_is_rendered_by_the_synthesizer(
    client: Client, room, host_token, media_dirs
) -> None:
    path = make_midi_file(media_dirs / "tune.mid", seconds=3)
    answer = upload(client, room, host_token, path)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["extension"] == "midi"
    assert answer.json()["totalDuration"] >= 3000
    (stored,) = stored_files(media_dirs)
    assert stored.suffix == ".wav"  # what FluidSynth rendered, which the worker plays


def truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def not_media(path: Path) -> Path:
    path.write_bytes(b"This is a shopping list, not a song.\n" * 200)
    return path


def video_only(path: Path) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(20):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("make", "name", "status", "code"),
    [
        (lambda d: not_media(d / "list.mp3"), "list.mp3", 400, "media_unreadable"),
        (lambda d: video_only(d / "silent.mp4"), "silent.mp4", 400, "media_no_audio"),
        (lambda d: truncated(make_tone_file(d / "cut.wav")), "cut.wav", 400, "media_truncated"),
        (lambda d: truncated(make_tone_file(d / "cut.mp3")), "cut.mp3", 400, "media_truncated"),
        (lambda d: truncated(make_tone_file(d / "cut.mp4")), "cut.mp4", 400, "media_unreadable"),
        (lambda d: make_tone_file(d / "song.wav"), "song.exe", 400, "media_bad_extension"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_kept(
    client: Client, room, host_token, media_dirs, make, name, status, code
) -> None:
    answer = upload(client, room, host_token, make(media_dirs), name=name)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.json()
    assert answer.json()["message"]
    assert nothing_kept(media_dirs)


def test_an_empty_file_is_refused_at_once(client: Client, room, host_token, media_dirs) -> None:
    answer = call(client, "post", uploads_url(room), host_token, {"name": "x.mp3", "size": 0})
    assert (answer.status_code, answer.json()["code"]) == (400, "media_empty")
    assert nothing_kept(media_dirs)


def test_an_oversized_file_is_refused_before_and_while_uploading(
    client: Client, room, host_token, media_dirs, settings
) -> None:
    settings.LIVEAUDIO_MEDIA_MAX_BYTES = 10_000
    answer = call(client, "post", uploads_url(room), host_token, {"name": "x.mp3", "size": 10_001})
    assert (answer.status_code, answer.json()["code"]) == (413, "media_too_large")
    # A client that states a small size and sends more is stopped at the stated size.
    started = call(client, "post", uploads_url(room), host_token, {"name": "x.wav", "size": 100})
    upload_id = started.json()["uploadID"]
    more = call(client, "put", uploads_url(room, f"{upload_id}/?offset=0"), host_token, b"x" * 101)
    assert (more.status_code, more.json()["code"]) == (413, "media_too_large")
    call(client, "delete", uploads_url(room, f"{upload_id}/"), host_token)
    assert nothing_kept(media_dirs)


def test_an_overlong_file_is_refused(
    client: Client, room, host_token, media_dirs, settings
) -> None:
    settings.LIVEAUDIO_MEDIA_MAX_DURATION_SECONDS = 5
    answer = upload(client, room, host_token, make_tone_file(media_dirs / "long.mp3"))
    assert (answer.status_code, answer.json()["code"]) == (400, "media_too_long")
    assert nothing_kept(media_dirs)


def test_an_extension_outside_the_uploaders_config_is_refused(
    client: Client, room, media_dirs
) -> None:
    from rooms.services import SessionRequest, embed_session_create

    room.app.allowed_origins, room.app.test_mode = "https://site.test", True
    room.app.save()
    session = embed_session_create(
        request=SessionRequest(
            app=room.app,
            room_id=room.room_id,
            user_id="host-1",
            user_name="H",
            token=None,
            app_sign=room.app.app_sign,
            parent_origin="https://site.test",
            config={"role": "host", "mediaPlayer": {"allowedExtensions": ["wav"]}},
        )
    )
    add_member(room, "host-1", role="host")
    headers = {"Origin": ORIGIN, "X-Liveaudio-Session": session.key}
    refused = client.post(
        uploads_url(room),
        {"name": "a.mp3", "size": 10},
        content_type="application/json",
        headers=headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "media_bad_extension")
    allowed = client.post(
        uploads_url(room),
        {"name": "a.wav", "size": 10},
        content_type="application/json",
        headers=headers,
    )
    assert allowed.status_code == 201


def test_a_refused_upload_leaves_the_playback_playing(
    client: Client, room, host_token, media_dirs
) -> None:
    song = upload(client, room, host_token, make_tone_file(media_dirs / "song.wav")).json()
    media_play(room=room, actor=None, media=MediaFile.objects.get(media_id=song["mediaID"]))
    before = media_state(room)
    answer = upload(client, room, host_token, not_media(media_dirs / "list.mp3"))
    assert answer.status_code == 400
    after = media_state(room)
    assert (after.state, after.media_id, after.key) == ("playing", song["mediaID"], before.key)
    assert MediaFile.objects.count() == 1


@pytest.mark.parametrize("role", ["audience", "speaker"])
def test_only_the_control_role_may_upload(client: Client, room, media_dirs, role) -> None:
    add_member(room, "guest", role="audience")
    answer = call(
        client,
        "post",
        uploads_url(room),
        page_token(room, "guest", role),
        {"name": "a.wav", "size": 10},
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "not_permitted")
    assert nothing_kept(media_dirs)


def test_the_credential_and_origin_are_checked_first(
    client: Client, room, host_token, media_dirs
) -> None:
    body = {"name": "a.wav", "size": 10}
    other_origin = call(
        client, "post", uploads_url(room), host_token, body, headers={"Origin": "https://evil.test"}
    )
    assert (other_origin.status_code, other_origin.json()["code"]) == (403, "origin_not_allowed")
    no_token = client.post(
        uploads_url(room), body, content_type="application/json", headers={"Origin": ORIGIN}
    )
    assert (no_token.status_code, no_token.json()["code"]) == (401, "token_missing")
    forged = call(client, "post", uploads_url(room), host_token[:-4] + "AAAA", body)
    assert (forged.status_code, forged.json()["code"]) == (401, "token_invalid")
    absent = call(client, "post", uploads_url(room), page_token(room, "not-joined"), body)
    assert (absent.status_code, absent.json()["code"]) == (403, "not_permitted")
    assert nothing_kept(media_dirs)


def test_chunks_come_in_order_and_a_cancel_keeps_nothing(
    client: Client, room, host_token, media_dirs
) -> None:
    started = call(client, "post", uploads_url(room), host_token, {"name": "a.wav", "size": 10})
    upload_id = started.json()["uploadID"]
    skipped = call(client, "put", uploads_url(room, f"{upload_id}/?offset=5"), host_token, b"12345")
    assert (skipped.status_code, skipped.json()["code"]) == (409, "media_bad_offset")
    early = call(client, "post", uploads_url(room, f"{upload_id}/finish/"), host_token)
    assert (early.status_code, early.json()["code"]) == (409, "media_upload_incomplete")
    assert call(client, "delete", uploads_url(room, f"{upload_id}/"), host_token).status_code == 204
    assert nothing_kept(media_dirs)


def test_the_rooms_end_removes_its_files_unless_kept(
    client: Client, room, host_token, media_dirs
) -> None:
    from rooms.services import room_end

    kept = upload(client, room, host_token, make_tone_file(media_dirs / "kept.wav")).json()
    gone = upload(client, room, host_token, make_tone_file(media_dirs / "gone.wav")).json()
    MediaFile.objects.filter(media_id=kept["mediaID"]).update(keep=True)
    media_play(room=room, actor=None, media=MediaFile.objects.get(media_id=gone["mediaID"]))
    room_end(room=room)
    assert list(MediaFile.objects.values_list("media_id", flat=True)) == [kept["mediaID"]]
    assert [p.name for p in stored_files(media_dirs)] == [f"{kept['mediaID']}.wav"]
    assert media_state(room).state == "noPlay"
