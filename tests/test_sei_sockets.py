"""SEI over the real room socket (issue 12, part 3): who may send, what is refused, and that a
speaker's SEI reaches every other participant stamped with the mix's RTP timestamp.

Participants are Channels communicators on the real consumer with real aiortc bots (the
set-up of tests/test_media_socket.py); the timing at a listener's ear is the browser test's
(tests/browser/test_sei.py)."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from rooms.media.sei import signed_distance
from tests.socket_client import Participant
from tests.test_media_player import a_file, playing
from tests.test_media_socket import A_TONE, Guest, Stage, make_room, pytestmark, wait_until
from tests.test_media_socket import fresh_media_hub as fresh_media_hub  # an autouse fixture
from tests.test_media_socket import stage as stage  # the fixture, by its name

__all__ = ["pytestmark"]


def sei_frames(guest: Guest) -> list[dict]:
    return [f for f in guest.socket.json if f.get("type") == "sei"]


async def send_sei(guest: Guest, data: object, **options: object) -> dict:
    return await guest.socket.request(
        "audioVideo.sendSEI", data=data, captureMs=time.time() * 1000, **options
    )


async def test_a_speakers_sei_reaches_everyone_else_with_the_mixs_rtp_timestamp(
    stage: Stage,
) -> None:
    ann = await stage.join("ann", A_TONE, seat=1)
    bob = await stage.join("bob")
    cy = await stage.join("cy")
    await cy.ok("seat.muteLocallyByUserID", userID="ann", muted=True)
    await stage.wait_connected(ann, bob, cy)
    await wait_until(lambda: bob.bot.tap.packets > 25, 10, "bob hears the room")

    reply = await send_sei(ann, {"beat": 1, "lyric": "la \u00e9 \U0001f3b5"})
    assert reply["type"] == "reply" and reply["data"] is True, reply
    for guest in (bob, cy):  # cy muted ann, and still gets her SEI
        frame = await guest.socket.wait_for("sei")
        (item,) = frame["items"]
        rtp_timestamp = item.pop("rtpTimestamp")
        assert item == {
            "typeIdentifier": "custom",
            "senderID": "ann",
            "sei": {"beat": 1, "lyric": "la \u00e9 \U0001f3b5"},
            "streamID": "media_ann_main",
            "streamType": "main",
        }
        # On the timeline of the packets this listener receives (one for the whole room).
        assert guest.bot.tap.last_ts is not None
        last = guest.bot.tap.last_ts & 0xFFFFFFFF
        assert abs(signed_distance(rtp_timestamp, last)) < 48000
    # Released to every socket at once: by now Ann's would have come, had she got one.
    assert (await ann.socket.request("ping"))["type"] == "reply"
    assert sei_frames(ann) == []


async def test_only_audio_in_the_mix_may_carry_an_sei(stage: Stage) -> None:
    ann = await stage.join("ann", seat=1, audio=False)
    bob = await stage.join("bob", audio=False)
    refused = await send_sei(bob, {"beat": 1})
    assert refused["type"] == "error" and refused["code"] == "not_in_mix", refused
    await ann.ok("microphone.turnOn", isOn=False)
    await ann.socket.wait_for(lambda f: f.get("type") == "room.update")
    refused = await send_sei(ann, {"beat": 1})
    assert refused["code"] == "not_in_mix", refused
    # The media stream: only the player's control role, and only while it plays.
    for guest in (ann, bob):
        refused = await send_sei(guest, {"line": "x"}, streamType="media")
        assert refused["type"] == "error" and refused["code"] == "not_in_mix", refused
    await ann.ok("microphone.turnOn", isOn=True)
    await ann.socket.wait_for(lambda f: f.get("type") == "room.update")
    assert (await send_sei(ann, {"beat": 2}))["data"] is True


async def test_bad_seis_are_error_frames_that_change_nothing(stage: Stage) -> None:
    ann = await stage.join("ann", seat=1, audio=False)
    limit = settings.LIVEAUDIO_SEI_MAX_BYTES
    cases = [
        ({"data": "not an object"}, "must be an object"),
        ({"data": ["a"]}, "must be an object"),
        ({"data": {"a": "x" * limit}}, f"at most {limit} bytes"),
        ({"data": {"a": "\ud800"}}, ""),
        ({"data": {"a": "nul\x00"}}, ""),
        ({"data": {"beat": 1}, "streamType": "screenSharing"}, "main or media"),
        ({"data": {"beat": 1}, "captureMs": "soon"}, "must be a number"),
        ({"data": {"beat": 1}, "captureMs": True}, "must be a number"),
        ({}, "needs 'data'"),
    ]
    for fields, message in cases:
        reply = await ann.socket.request("audioVideo.sendSEI", **fields)
        assert reply["type"] == "error", (fields, reply)
        assert message in reply["message"], (fields, reply)
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    # Refused by the frame's own depth check, before its requestID is read.
    await ann.socket.send("audioVideo.sendSEI", data=deep)
    error = await ann.socket.wait_for("error")
    assert "deep" in error["message"], error
    assert (await ann.socket.request("ping"))["type"] == "reply"


async def test_a_flood_of_seis_is_refused_past_the_rate_and_the_socket_goes_on(
    stage: Stage,
) -> None:
    ann = await stage.join("ann", seat=1, audio=False)
    limit = settings.LIVEAUDIO_SEI_PER_SECOND
    for n in range(limit + 1):
        await ann.socket.send("audioVideo.sendSEI", data={"n": n}, requestID=f"s{n}")
    ids = {f"s{n}" for n in range(limit + 1)}

    def replies() -> dict[str, dict]:
        return {f["requestID"]: f for f in ann.socket.json if f.get("requestID") in ids}

    async with asyncio.timeout(10):
        while len(replies()) < len(ids):
            await ann.socket.wait_for(lambda f: f.get("requestID") in ids)
    by_id = replies()
    assert by_id["s0"]["type"] == "reply", by_id["s0"]
    # Sent within a second, one more than the limit: the last is refused, by name.
    assert by_id[f"s{limit}"].get("code") == "sei_rate_limited", by_id[f"s{limit}"]
    assert (await ann.socket.request("ping"))["type"] == "reply"


async def test_a_media_sei_goes_with_the_players_audio_to_everyone_else(media_dirs) -> None:
    """The player's controller sends with the media stream while a file plays; nobody needs
    a peer for it (the room's clock runs for the playback)."""
    room = await make_room("media-sei")
    media_id = await a_file(room, media_dirs)
    host = await Participant.join(room, "h", role="host")
    guest = await Participant.join(room, "g")
    played = await host.request("media.play", filePathOrURL=media_id)
    assert played["type"] == "reply", played
    await host.wait_for(playing(media_id))
    refused = await guest.request(
        "audioVideo.sendSEI", data={"line": "x"}, streamType="media", captureMs=1.0
    )
    assert refused["code"] == "not_in_mix", refused
    sent = await host.request("audioVideo.sendSEI", data={"line": "la"}, streamType="media")
    assert sent["type"] == "reply" and sent["data"] is True, sent
    frame = await guest.wait_for("sei")
    (item,) = frame["items"]
    assert (item["senderID"], item["streamType"], item["sei"]) == ("h", "media", {"line": "la"})
    assert item["streamID"] == "media-sei_h_media"
    assert (await host.request("media.stop"))["type"] == "reply"
    await asyncio.gather(host.leave(), guest.leave())
