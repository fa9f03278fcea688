"""The media player on the HTTP API: an integrator's backend starts, stops and reads it."""

from __future__ import annotations

import pytest

from rooms.models import Playback
from tests.media_files import make_tone_file
from tests.media_uploads import stored_media
from tests.test_api import Api

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_dirs")]


@pytest.fixture
def api(app) -> Api:
    return Api(app)


def test_a_backend_plays_stops_and_reads_the_player(api, room, media_dirs) -> None:
    media = stored_media(room, make_tone_file(media_dirs / "song.mp3"))
    idle = api.get(f"/rooms/{room.room_id}/media").json()
    assert (idle["state"], idle["volume"], [f["mediaID"] for f in idle["files"]]) == (
        "noPlay",
        30,
        [media.media_id],
    )
    played = api.post(f"/rooms/{room.room_id}/media/play", {"filePathOrURL": media.media_id})
    assert played.status_code == 200, played.json()
    body = played.json()
    assert (body["state"], body["mediaID"], body["startedBy"], body["name"]) == (
        "playing",
        media.media_id,
        None,
        "song.mp3",
    )
    assert Playback.objects.get(room=room).state == "playing"
    stopped = api.post(f"/rooms/{room.room_id}/media/stop")
    assert (stopped.status_code, stopped.json()["state"]) == (200, "noPlay")


@pytest.mark.parametrize(
    ("source", "status", "code"),
    [
        ("no-such-file", 404, "media_not_found"),
        ("https://media.example/song.mp3", 403, "media_remote_not_allowed"),
    ],
)
def test_a_bad_source_is_a_clear_refusal(api, room, source, status, code) -> None:
    answer = api.post(f"/rooms/{room.room_id}/media/play", {"filePathOrURL": source})
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert not Playback.objects.filter(room=room, state="playing").exists()
