"""MediaPeer's life: refusing bad offers, timing out, closing without leaks."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection
from media_helpers import A_TONE, Room, decoder_threads, media_tasks, wait_for_no_leaks

from bench.bot import Bot, connect_in_process
from rooms.media import MediaError, MediaPeer, RoomMixer, rtc_configuration


async def video_only_offer() -> str:
    pc = RTCPeerConnection(rtc_configuration())
    pc.addTransceiver("video", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


@pytest.mark.asyncio
@pytest.mark.parametrize("garbage", ["", "hello", "v=0\r\nm=audio nonsense\r\n", "v=0\r\n"])
async def test_garbage_sdp_is_refused(garbage: str) -> None:
    mixer = RoomMixer()
    peer = MediaPeer("A", mixer)
    with pytest.raises(MediaError) as error:
        await peer.accept_offer(garbage)
    assert error.value.code in {"bad_sdp", "no_audio"}
    await peer.close()
    assert mixer.participants == []


@pytest.mark.asyncio
async def test_offer_without_audio_is_refused() -> None:
    peer = MediaPeer("A", RoomMixer())
    with pytest.raises(MediaError) as error:
        await peer.accept_offer(await video_only_offer())
    assert error.value.code == "no_audio"
    await peer.close()


@pytest.mark.asyncio
async def test_an_answer_is_not_an_offer() -> None:
    bot = Bot("A", A_TONE)
    peer = MediaPeer("A", RoomMixer())
    with pytest.raises(MediaError) as error:
        await peer.accept_offer(await bot.create_offer(), type="answer")
    assert error.value.code == "bad_type"
    await peer.close()
    await bot.close()


@pytest.mark.asyncio
async def test_peer_that_never_connects_is_closed_after_timeout() -> None:
    before = media_tasks()
    mixer = RoomMixer()
    bot = Bot("A", A_TONE)
    peer = MediaPeer("A", mixer, connect_timeout=0.5)
    await peer.accept_offer(await bot.create_offer())  # the answer never reaches the bot
    assert mixer.participants == ["A"]
    await asyncio.wait_for(peer.wait_closed(), 5)
    assert peer.timed_out
    assert mixer.participants == []
    await bot.close()
    await wait_for_no_leaks(before)


@pytest.mark.asyncio
async def test_close_releases_tasks_threads_and_the_mixer_slot(room: Room) -> None:
    before = media_tasks()
    await room.join("A", A_TONE, audible=True)
    await room.wait_connected()
    assert decoder_threads() > 0
    await room.bots.pop("A").close()
    await room.peers.pop("A").close()
    assert room.mixer.participants == []
    await wait_for_no_leaks(before)


@pytest.mark.asyncio
async def test_ten_rapid_connect_close_cycles_leak_nothing() -> None:
    before = media_tasks()
    mixer = RoomMixer()
    mixer.start()
    for i in range(10):
        bot, peer = Bot(f"bot{i}", A_TONE), MediaPeer("P", mixer)
        await connect_in_process(bot, peer)
        if i % 2:  # half of them close before ICE has even completed
            await peer.wait_connected(10)
        await peer.close()
        await bot.close()
    await mixer.stop()
    await wait_for_no_leaks(before)
    assert mixer.participants == []
    assert mixer.encoder_count == 0


@pytest.mark.asyncio
async def test_remote_hangup_closes_the_server_peer(room: Room) -> None:
    await room.join("A", A_TONE, audible=True)
    await room.wait_connected()
    await room.bots.pop("A").close()
    await asyncio.wait_for(room.peers["A"].wait_closed(), 10)
    assert room.mixer.participants == []
