"""The media player survives a restart: playing becomes paused at the position reached, and
resume plays the same file on from there (a new playout key for the new worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms.models import Playback, ServerProcess
from rooms.selectors import media_state
from rooms.services import media_play, media_resume
from rooms.services.presence import playbacks_pause_after_restart, process_register
from tests.media_files import make_tone_file
from tests.media_uploads import stored_media

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_dirs")]


def playing_since(room, media_dirs, seconds_ago: float) -> Playback:
    media = stored_media(room, make_tone_file(media_dirs / "song.mp3"))
    media_play(room=room, actor=None, media=media)
    Playback.objects.filter(room=room).update(
        position_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return Playback.objects.get(room=room)


def test_a_restart_pauses_at_the_position_reached_and_resume_goes_on(room, media_dirs) -> None:
    before = playing_since(room, media_dirs, 4.0)
    process_register(channel_prefix="me")
    assert playbacks_pause_after_restart(me="me") == 1
    paused = media_state(room)
    assert paused.state == "pausing" and paused.media_id == before.media.media_id
    assert 4000 <= paused.position <= 4500
    assert paused.key != before.key  # the old worker's playout is gone
    media_resume(room=room, actor=None)
    resumed = media_state(room)
    assert (resumed.state, resumed.media_id, resumed.key) == (
        "playing",
        paused.media_id,
        paused.key,
    )
    assert resumed.position == paused.position


def test_a_process_joining_a_live_cluster_leaves_the_playing_alone(room, media_dirs) -> None:
    before = playing_since(room, media_dirs, 1.0)
    now = timezone.now()
    ServerProcess.objects.create(
        channel_prefix="other", host="elsewhere", pid=1, started_at=now, heartbeat_at=now
    )
    assert playbacks_pause_after_restart(me="me") == 0
    assert media_state(room).state == "playing" and media_state(room).key == before.key


def test_a_dead_process_left_behind_does_not_count(room, media_dirs) -> None:
    playing_since(room, media_dirs, 1.0)
    stale = timezone.now() - timedelta(hours=1)
    ServerProcess.objects.create(
        channel_prefix="gone", host="elsewhere", pid=1, started_at=stale, heartbeat_at=stale
    )
    assert playbacks_pause_after_restart(me="me") == 1
