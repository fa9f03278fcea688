"""MediaPeer's life: refusing bad offers, timing out, closing without leaks, one certificate."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from aiortc import RTCCertificate, RTCPeerConnection
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from media_helpers import (
    A_TONE,
    TONES,
    Room,
    decoder_threads,
    media_tasks,
    wait_for_no_leaks,
    wait_until,
)

from bench.bot import Bot, connect_in_process
from rooms.media import MediaError, MediaPeer, RoomMixer, outbound, patches, rtc_configuration
from rooms.media.patches import worker_certificate


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


@pytest.mark.asyncio
async def test_sender_reports_carry_what_the_direct_wire_sent(room: Room, monkeypatch) -> None:
    """The server's sender reports (its own loop, every ~5 s in production) tell a
    listener how many packets the wire sent, as aiortc's own reports would."""
    monkeypatch.setattr(outbound, "SENDER_REPORT_SECONDS", 0.1)
    await room.join("A", A_TONE, audible=True)
    listener = await room.join("B", None, audible=False)
    await room.wait_connected()
    track = room.peers["B"].track

    async def reported() -> tuple[int, int]:
        """(packets the last report said were sent, packets the wire has sent by now)"""
        stats = (await listener.pc.getStats()).values()
        sent = [s.packetsSent for s in stats if s.type == "remote-outbound-rtp"]
        return max(sent, default=0), track.sent

    counts = [await reported()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not counts[-1][0]:
        assert loop.time() < deadline, "no sender report"
        await asyncio.sleep(0.02)
        counts.append(await reported())
    # Two more within 0.9 s: ours come every 0.05-0.15 s here; aiortc's loop, which this
    # one replaces, waits 0.5-1.5 s between reports whatever the setting.
    deadline = loop.time() + 0.9
    while len({said for said, _ in counts if said}) < 3:
        assert loop.time() < deadline, counts
        await asyncio.sleep(0.02)
        counts.append(await reported())
    for said, sent in counts:
        # The wire's own counts, kept every 10 packets: a report is never ahead of it.
        assert said == 0 or sent - 50 <= said <= sent, counts


def fingerprint(sdp: str) -> str:
    return next(line for line in sdp.splitlines() if line.startswith("a=fingerprint:"))


@pytest.mark.asyncio
async def test_every_peer_shows_the_workers_one_certificate(room: Room) -> None:
    """No key pair and certificate made per peer: DTLS completes for each with the
    process's one certificate (its fingerprint in every answer), and the mix flows."""
    await room.join("A", A_TONE, audible=True)
    listener = await room.join("B", None, audible=False)
    await room.wait_connected()
    answers = [bot.pc.remoteDescription.sdp for bot in room.bots.values()]
    assert fingerprint(answers[0]) == fingerprint(answers[1])
    assert fingerprint(answers[0]).endswith(worker_certificate().getFingerprints()[0].value)
    await wait_until(lambda: listener.hears(TONES) == {A_TONE}, timeout=10)


def test_the_workers_certificate_is_made_again_before_it_expires(monkeypatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "expiring")])
    now = datetime.datetime.now(datetime.UTC)
    expiring = RTCCertificate(
        key=key,
        cert=x509.CertificateBuilder(subject_name=name, issuer_name=name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=29))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .sign(key, hashes.SHA256()),
    )
    monkeypatch.setattr(patches, "_worker_certificate", expiring)
    renewed = worker_certificate()
    assert renewed is not expiring
    assert renewed.expires - now > datetime.timedelta(days=20)
    assert worker_certificate() is renewed  # kept until its own last day
