"""The media player through the real room socket and the real media hub playing real files:
control, who may, progress from the worker's playout, the end written once, the race."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from channels.db import database_sync_to_async as db

from rooms import player
from rooms.models import Playback, Room
from tests.media_files import make_tone_file
from tests.media_uploads import stored_media
from tests.socket_client import SOCKET_TESTS, Participant, event_of

pytestmark = [*SOCKET_TESTS, pytest.mark.usefixtures("media_dirs")]


@db
def a_file(room: Room, dirs: Path, name: str = "song.wav", seconds: float = 5.0) -> str:
    path = make_tone_file(dirs / name, segments=((500.0, seconds / 2), (1000.0, seconds / 2)))
    return stored_media(room, path).media_id


@db
def stored(room: Room) -> tuple:
    playback = Playback.objects.filter(room=room).select_related("media").first()
    if playback is None:
        return ("none",)
    media_id = playback.media.media_id if playback.media else None
    return (playback.state, media_id, playback.volume, playback.repeat, playback.key)


def media_of(frame: dict) -> dict:
    return frame["state"]["media"]


def playing(media_id: str):
    return lambda f: (
        f.get("type") == "room.update"
        and media_of(f)["state"] == "playing"
        and (media_of(f)["mediaID"] == media_id)
    )


async def progress(participant: Participant, count: int, timeout: float = 10) -> list[dict]:
    frames = []
    for _ in range(count):
        frames.append(await participant.wait_for("media.progress", timeout=timeout))
    return frames


async def test_the_host_plays_and_everyone_gets_the_worker_progress(room, media_dirs) -> None:
    media_id = await a_file(room, media_dirs)
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    assert host.json[0]["state"]["media"]["canControl"] is True
    assert guest.json[0]["state"]["media"]["canControl"] is False
    answer = await host.request("media.play", filePathOrURL=media_id)
    assert answer["ok"], answer
    update = await guest.wait_for(playing(media_id))
    assert event_of(update, "media.onPlayStateChanged", state="playing", startedBy="h")
    assert media_of(update)["totalDuration"] == 5000 and media_of(update)["volume"] == 30
    frames = await progress(guest, 8)
    positions = [f["position"] for f in frames]
    assert positions == sorted(positions) and positions[-1] > positions[0]
    # At least 4 a second of playout, counted on the playout's own clock (so a loaded
    # machine does not make it fail): 250 ms of audio between reports, on average.
    per_report = (positions[-1] - positions[0]) / (len(positions) - 1)
    assert per_report <= 270, positions
    assert {f["totalDuration"] for f in frames} == {5000}
    for participant in (host, guest):
        await participant.leave()


async def test_pause_resume_seek_volume_stop(room, media_dirs) -> None:
    media_id = await a_file(room, media_dirs)
    host = await Participant.join(room, "h", role="host")
    await host.request("media.play", filePathOrURL=media_id, enableRepeat=True)
    await host.wait_for(playing(media_id))
    assert (await host.request("media.pause"))["ok"]
    paused = await host.wait_for(
        lambda f: f.get("type") == "room.update" and media_of(f)["state"] == "pausing"
    )
    assert 0 < media_of(paused)["position"] < 5000
    assert (await host.request("media.seekTo", millisecond=4000))["ok"]
    seeked = await host.wait_for(
        lambda f: f.get("type") == "room.update" and media_of(f)["position"] == 4000
    )
    assert media_of(seeked)["state"] == "pausing"
    assert (await host.request("media.resume"))["ok"]
    frame = await host.wait_for(
        lambda f: f.get("type") == "media.progress" and f["position"] >= 4000
    )
    assert frame["state"] == "playing"
    assert (await host.request("media.setVolume", volume=80))["ok"]
    await host.wait_for(lambda f: f.get("type") == "room.update" and media_of(f)["volume"] == 80)
    state, _, volume, repeat, key = await stored(room)
    assert (state, volume, repeat) == ("playing", 80, True)
    assert player._posted[room.pk] is not None and player._posted[room.pk].key == key
    assert (player._posted[room.pk].volume, player._posted[room.pk].repeat) == (80, True)
    assert (await host.request("media.stop"))["ok"]
    await host.wait_for(
        lambda f: f.get("type") == "room.update" and media_of(f)["state"] == "noPlay"
    )
    assert room.pk not in player._posted  # told to stop, nothing kept
    await host.leave()


@pytest.mark.parametrize(
    ("action", "args", "code"),
    [
        ("media.seekTo", {"millisecond": 60_000}, "media_bad_position"),
        ("media.resume", {}, "media_not_paused"),
        ("media.play", {"filePathOrURL": "no-such-media"}, "media_not_found"),
        ("media.play", {"filePathOrURL": "http://media.example/a.mp3"}, "media_remote_not_allowed"),
        ("media.setVolume", {"volume": 101}, "bad_request"),
    ],
)
async def test_a_bad_request_changes_nothing(room, media_dirs, action, args, code) -> None:
    media_id = await a_file(room, media_dirs)
    host = await Participant.join(room, "h", role="host")
    await host.request("media.play", filePathOrURL=media_id)
    await host.wait_for(playing(media_id))
    before = await stored(room)
    answer = await host.request(action, **args)
    assert (answer["type"], answer["code"]) == ("error", code), answer
    assert await stored(room) == before
    await host.leave()


@pytest.mark.parametrize("action", ["media.play", "media.pause", "media.seekTo", "media.stop"])
async def test_an_audience_member_may_not_control_it(room, media_dirs, action) -> None:
    media_id = await a_file(room, media_dirs)
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    await host.request("media.play", filePathOrURL=media_id)
    await host.wait_for(playing(media_id))
    before = await stored(room)
    args = {"media.play": {"filePathOrURL": media_id}, "media.seekTo": {"millisecond": 10}}
    answer = await guest.request(action, **args.get(action, {}))
    assert (answer["type"], answer["code"]) == ("error", "not_permitted")
    assert await stored(room) == before
    for participant in (host, guest):
        await participant.leave()


@db
def set_roles(room: Room, roles: list[str]) -> None:
    Room.objects.filter(pk=room.pk).update(media_roles=roles)


async def test_the_rooms_roles_decide_and_a_cohost_standing_in_counts_as_host(
    room, media_dirs
) -> None:
    media_id = await a_file(room, media_dirs)
    await set_roles(room, ["speaker"])
    speaker = await Participant.join(room, "s", role="speaker", takeIndexWhenJoining=2)
    guest = await Participant.join(room, "g")
    assert (await speaker.request("media.play", filePathOrURL=media_id))["ok"]
    assert (await guest.request("media.pause"))["code"] == "not_permitted"
    await set_roles(room, ["host"])
    from rooms.models import Member

    await db(Member.objects.filter(room=room, user_id="s").update)(role="cohost")
    assert (await speaker.request("media.pause"))["ok"]  # no host online: the co-host is one
    for participant in (speaker, guest):
        await participant.leave()


async def test_two_controllers_racing_leave_one_consistent_winner(room, media_dirs) -> None:
    first, second = await a_file(room, media_dirs, "a.wav"), await a_file(room, media_dirs, "b.wav")
    host = await Participant.join(room, "h", role="host")
    await set_roles(room, ["host", "speaker"])  # as a host's config would (the join sets it)
    speaker = await Participant.join(room, "s", role="speaker", takeIndexWhenJoining=2)
    answers = await asyncio.gather(
        host.request("media.play", filePathOrURL=first),
        speaker.request("media.play", filePathOrURL=second),
    )
    assert all(a.get("ok") for a in answers), answers
    state, winner, *_, key = await stored(room)
    assert state == "playing" and winner in (first, second)
    for participant in (host, speaker):
        await participant.wait_for(
            lambda f: f.get("type") == "room.update" and media_of(f)["key"] == key
        )
    assert player._posted[room.pk].key == key
    for participant in (host, speaker):
        await participant.leave()


async def test_the_end_is_written_once_however_many_sockets_hear_it(room, media_dirs) -> None:
    media_id = await a_file(room, media_dirs, seconds=1.0)
    host = await Participant.join(room, "h", role="host")
    guests = [await Participant.join(room, f"g{i}") for i in range(3)]
    await host.request("media.play", filePathOrURL=media_id)
    ended = await guests[0].wait_for(
        lambda f: f.get("type") == "room.update" and media_of(f)["state"] == "playEnded", timeout=10
    )
    assert media_of(ended)["position"] == 1000
    await host.request("ping")
    await asyncio.sleep(0)  # let any duplicate arrive before counting
    frames = [f for f in host.json if f.get("type") == "room.update"]
    ends = [e for f in frames for e in f["events"] if e.get("state") == "playEnded"]
    assert len(ends) == 1
    assert (await stored(room))[0] == "playEnded"
    for participant in (host, *guests):
        await participant.leave()


async def test_mute_local_is_this_sockets_alone(room, media_dirs) -> None:
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    assert (await guest.wait_for("media.mute"))["mute"] is False
    answer = await guest.request("media.muteLocal", mute=True)
    assert answer["data"] == {"mute": True}
    assert any(f.get("type") == "media.mute" and f["mute"] for f in guest.json)

    # The media source is one more local mute of this socket's, never shown as a user's.
    muted = await guest.request("seat.muteLocallyByUserID", userID="h", muted=True)
    assert muted["data"] == {"mutedUserIDs": ["h"]}
    unmuted = await guest.request("media.muteLocal", mute=False)
    assert unmuted["data"] == {"mute": False}
    for participant in (host, guest):
        await participant.leave()


@db
def host_session(room: Room, config: dict) -> str:
    from rooms.services import SessionRequest, embed_session_create

    room.app.allowed_origins, room.app.test_mode = "http://localhost", True
    room.app.save()
    request = SessionRequest(
        app=room.app,
        room_id=room.room_id,
        user_id="h",
        user_name="H",
        token=None,
        app_sign=room.app.app_sign,
        parent_origin="http://localhost",
        config={"role": "host", **config},
    )
    return embed_session_create(request=request).key


async def test_the_hosts_config_sets_the_roles_and_starts_background_media(
    room, media_dirs
) -> None:
    from channels.testing import WebsocketCommunicator

    from liveaudio.asgi import application
    from tests.socket_client import ORIGIN

    media_id = await a_file(room, media_dirs)
    key = await host_session(
        room,
        {
            "mediaPlayer": {"rolesCanControl": ["host", "audience"]},
            "backgroundMedia": {"path": media_id, "enableRepeat": True},
        },
    )
    path = f"/ws/rooms/{room.app.app_id}/{room.room_id}/?session={key}"
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    assert (await communicator.connect())[0]
    host = Participant(communicator)
    update = await host.wait_for(playing(media_id))
    assert media_of(update)["repeat"] is True and media_of(update)["startedBy"] == "h"
    assert media_of(update)["rolesCanControl"] == ["host", "audience"]
    guest = await Participant.join(room, "g")
    assert guest.json[0]["state"]["media"]["canControl"] is True
    assert (await guest.request("media.pause"))["ok"]
    for participant in (host, guest):
        await participant.leave()


async def test_the_end_is_written_when_nobody_here_listens_any_more(room, media_dirs) -> None:
    """The host starts a file and leaves (the music goes on): its end is still written, and
    then this process lets the room's playout go."""
    media_id = await a_file(room, media_dirs, seconds=1.5)
    host = await Participant.join(room, "h", role="host")
    await host.request("media.play", filePathOrURL=media_id)
    await host.wait_for(playing(media_id))
    await host.leave()
    # Watched without the database: polling it would contend with the end's own write (the
    # test database is SQLite in memory, whose table locks refuse rather than wait).
    async with asyncio.timeout(15):
        while room.pk in player.RoomPlayer._rooms:  # goes once the end is written
            await asyncio.sleep(0.05)
    assert room.pk not in player._posted
    assert (await stored(room))[0] == "playEnded"
