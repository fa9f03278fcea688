"""The media plane through the real room socket: aiortc bots, the real consumer, one loop.

Each participant is a `Participant` (Channels' WebsocketCommunicator on the real
`RoomConsumer`) plus a `Bot` (a real aiortc peer sending a tone and analysing what it hears),
negotiated with `rtc.offer` over the socket. Every ICE candidate is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
from aiortc import RTCPeerConnection
from channels.db import database_sync_to_async

from bench.bot import FRAME_SECONDS, Bot
from rooms import services
from rooms.media import restrict_host_candidates_to_loopback, rtc_configuration
from rooms.media.patches import install_close_race_fix
from rooms.models import App, Member, Role, Room
from rooms.rtc import media_hub
from tests.socket_client import Participant

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

A_TONE, C_TONE, X_TONE = 440.0, 660.0, 880.0
TONES = (A_TONE, C_TONE, X_TONE)
# Bots send amplitude 6000. Through two Opus passes `tone_amplitudes` measures a mixed tone
# at ~4200 and one that is not mixed below 10: 1500 leaves a wide margin on both sides.
HEARD = 1500.0
CONNECT_SECONDS = 10.0


# --- helpers ----------------------------------------------------------------------------------


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> float:
    """Poll `condition` until it holds; return how long it took; fail at the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def hears(bot: Bot, seconds: float = 0.3) -> set[float]:
    return bot.hears(TONES, threshold=HEARD, seconds=seconds)


async def audio_from_now(bots: list[Bot], seconds: float = 1.0) -> None:
    """Wait until every bot has decoded `seconds` more audio (a window after a change)."""
    marks = {bot: bot.frames_decoded for bot in bots}
    needed = round(seconds / FRAME_SECONDS)
    await wait_until(
        lambda: all(bot.frames_decoded - mark >= needed for bot, mark in marks.items()),
        timeout=seconds + 5,
        what=f"{seconds}s more audio for {[b.name for b in bots]}",
    )


def live_tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


def decoder_threads() -> int:
    """aiortc starts one `audio-decoder` thread per receiver; closing must join it."""
    return sum(1 for t in threading.enumerate() if t.name.endswith("-decoder"))


@database_sync_to_async
def make_host(room: Room, user_id: str) -> None:
    """Host permissions for a member who stays in the audience (joining as host takes the
    host's seat)."""
    Member.objects.filter(room=room, user_id=user_id).update(role=Role.HOST)


@database_sync_to_async
def make_room(room_id: str) -> Room:
    app, _ = App.objects.get_or_create(app_id=777, defaults={"name": "Media socket tests"})
    return services.room_create(app=app, room_id=room_id, title="Media")


@dataclass
class Guest:
    """One participant: the room socket and an aiortc bot."""

    user_id: str
    socket: Participant
    bot: Bot

    async def offer(self, sdp: str | None = None) -> dict:
        """Send `rtc.offer` (the bot's own offer by default); return the reply or error."""
        if sdp is None:
            sdp = await self.bot.create_offer()
        return await self.socket.request("rtc.offer", sdp=sdp)

    async def connect_audio(self) -> None:
        reply = await self.offer()
        assert reply["type"] == "reply", reply
        assert reply["data"]["type"] == "answer"
        await self.bot.accept_answer(reply["data"]["sdp"])

    async def ok(self, action: str, **args: object) -> dict:
        reply = await self.socket.request(action, **args)
        assert reply["type"] == "reply", reply
        return reply

    def vanish(self) -> None:
        """Gone without a goodbye: no DTLS close, no RTCP BYE, not one more packet."""
        self.bot.tone.stop()
        for transceiver in self.bot.pc.getTransceivers():
            # Private aiortc/aioice attributes: the only way to pull the cable in-process.
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                protocol.transport.close()


class Stage:
    """A room with guests; everything it made is closed at teardown, even after a failure."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.guests: list[Guest] = []
        self.bots: list[Bot] = []
        self.tasks_before = live_tasks()

    async def join(
        self,
        user_id: str,
        tone: float | None = None,
        *,
        seat: int | None = None,
        audio: bool = True,
    ) -> Guest:
        socket_ = await Participant.join(self.room, user_id)
        guest = Guest(user_id, socket_, self.bot(user_id, tone))
        self.guests.append(guest)
        if seat is not None:
            await guest.ok("seat.take", index=seat)
            await guest.ok("microphone.turnOn", isOn=True)
        if audio:
            await guest.connect_audio()
        return guest

    def bot(self, name: str, tone: float | None = None) -> Bot:
        bot = Bot(name, tone)
        self.bots.append(bot)
        return bot

    async def wait_connected(self, *guests: Guest) -> None:
        # Polled: the peers live on the media engine's loop, their events are not ours.
        hub = media_hub()
        for guest in guests:
            peer = hub.peer(self.room.pk, guest.user_id)
            assert peer is not None, guest.user_id
            await wait_until(
                lambda p=peer: p.connection_state == "connected", CONNECT_SECONDS, guest.user_id
            )

    async def close(self) -> None:
        for bot in self.bots:
            await bot.close()
        for guest in self.guests:
            with contextlib.suppress(Exception):
                await guest.socket.leave()
        # Grace timers started by the sockets' disconnects write to the database: let them
        # finish inside the test, before the database is flushed.
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: live_tasks() <= self.tasks_before, 2.0)


@pytest_asyncio.fixture(autouse=True)
async def fresh_media_hub() -> AsyncIterator[None]:
    """Loopback-only ICE, and a media engine made for (and stopped with) this test."""
    restrict_host_candidates_to_loopback()
    install_close_race_fix()  # for the bots too: they close mid-handshake here
    media_hub.cache_clear()  # a hub cached by another test belongs to a closed loop
    yield
    if media_hub.cache_info().currsize:
        await media_hub().close()
    media_hub.cache_clear()


@pytest_asyncio.fixture
async def stage() -> AsyncIterator[Stage]:
    stage = Stage(await make_room("media"))
    try:
        yield stage
    finally:
        await stage.close()


async def speakers_and_listener(stage: Stage) -> tuple[Guest, Guest, Guest]:
    """A (440 Hz, seat 1), C (660 Hz, seat 2), both with mic on; B in the audience, and host."""
    a = await stage.join("a", A_TONE, seat=1)
    b = await stage.join("b")
    await make_host(stage.room, "b")  # with host permissions, not on the host's seat
    c = await stage.join("c", C_TONE, seat=2)
    await stage.wait_connected(a, b, c)
    await wait_until(lambda: hears(b.bot) == {A_TONE, C_TONE}, CONNECT_SECONDS, "B hears A+C")
    return a, b, c


# --- who hears whom ---------------------------------------------------------------------------


async def test_the_room_rules_hold_on_the_wire(stage: Stage) -> None:
    a, b, c = await speakers_and_listener(stage)
    x = await stage.join("x", X_TONE)  # audience, no seat, its bot sends 880 Hz anyway
    await stage.wait_connected(x)
    hub, pk = media_hub(), stage.room.pk
    everyone = [a.bot, b.bot, c.bot, x.bot]

    await wait_until(lambda: hears(a.bot) == {C_TONE}, what="A hears C only")
    await wait_until(lambda: hears(c.bot) == {A_TONE}, what="C hears A only")
    await wait_until(lambda: hears(x.bot) == {A_TONE, C_TONE}, what="X hears A+C")
    await audio_from_now(everyone, 1.0)
    assert hears(a.bot, 1.0) == {C_TONE}  # never oneself
    assert hears(b.bot, 1.0) == {A_TONE, C_TONE}
    assert hears(c.bot, 1.0) == {A_TONE}
    assert hears(x.bot, 1.0) == {A_TONE, C_TONE}  # nobody, not even X, hears the 880 Hz
    assert hub.peer(pk, "x").playout.stats.received > 0  # X's audio reached the server
    # Mixes: A's (hears C), C's (hears A), one shared by the audience B and X.
    assert hub.mixer(pk).encoder_count == 3

    # The host mutes A; A's bot keeps sending, the server stops mixing it within a second.
    sent_by_a = hub.peer(pk, "a").playout.stats.received
    muted_at = time.monotonic()
    assert (await b.ok("seat.host.mute", targetIndex=1, muted=True))["data"] == {"userID": "a"}
    await wait_until(lambda: A_TONE not in hears(b.bot), 1.0, "B stops hearing A")
    assert time.monotonic() - muted_at < 1.0
    await audio_from_now([b.bot, c.bot, x.bot], 1.0)
    assert hears(b.bot, 1.0) == {C_TONE}
    assert hears(x.bot, 1.0) == {C_TONE}
    assert hears(c.bot, 1.0) == set()
    assert hub.peer(pk, "a").playout.stats.received > sent_by_a + 40  # still sending

    # A turns the microphone back on: heard again.
    await a.ok("microphone.turnOn", isOn=True)
    await wait_until(lambda: hears(b.bot) == {A_TONE, C_TONE}, 2.0, "B hears A again")

    # B mutes seat 2 for itself only.
    assert (await b.ok("seat.muteLocally", targetIndex=2, muted=True))["data"] == {
        "mutedUserIDs": ["c"]
    }
    await wait_until(lambda: hears(b.bot) == {A_TONE}, 1.0, "B stops hearing C")
    await audio_from_now([a.bot, b.bot, x.bot], 1.0)
    assert hears(b.bot, 1.0) == {A_TONE}
    assert hears(a.bot, 1.0) == {C_TONE}
    assert hears(x.bot, 1.0) == {A_TONE, C_TONE}

    # A leaves the seat: nobody hears A any more, whatever its bot sends.
    await a.ok("seat.leave")
    await wait_until(lambda: A_TONE not in hears(b.bot) | hears(x.bot), 1.0, "A unheard")
    await audio_from_now([b.bot, c.bot, x.bot], 1.0)
    assert hears(b.bot, 1.0) == set()
    assert hears(c.bot, 1.0) == set()
    assert hears(x.bot, 1.0) == {C_TONE}


async def test_levels_frames_show_the_audible_speakers_and_only_changes(stage: Stage) -> None:
    a, b, c = await speakers_and_listener(stage)

    def levels(*speaking: str) -> Callable[[dict], bool]:
        return lambda f: (
            f.get("type") == "levels"
            and sorted(uid for uid, level in f["levels"].items() if level > 0.01)
            == sorted(speaking)
        )

    frame = await b.socket.wait_for(levels("a", "c"))
    assert set(frame["levels"]) == {"a", "c"}  # only who is heard, never the audience
    await b.ok("seat.host.mute", targetIndex=1, muted=True)
    frame = await b.socket.wait_for(levels("c"))
    assert "a" not in frame["levels"]
    sent = [f["levels"] for f in b.socket.json if f.get("type") == "levels"]
    assert all(one != two for one, two in zip(sent, sent[1:], strict=False))  # no repeats


# --- bad input --------------------------------------------------------------------------------


async def offer_of(*kinds: str) -> str:
    pc = RTCPeerConnection(rtc_configuration())
    for kind in kinds:
        pc.addTransceiver(kind, direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def without_lines(sdp: str, prefix: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefix))


async def test_bad_offers_get_error_frames_and_the_room_plays_on(stage: Stage) -> None:
    a = await stage.join("a", A_TONE, seat=1)
    b = await stage.join("b")
    await stage.wait_connected(a, b)
    await wait_until(lambda: hears(b.bot) == {A_TONE}, CONNECT_SECONDS, "B hears A")
    e = await stage.join("e", audio=False)
    good = await e.bot.create_offer()
    bad_offers = {
        "garbage": ("hello", "media_bad_sdp"),
        "truncated": ("v=0\r\nm=audio nonsense\r\n", "media_bad_sdp"),
        "no audio": (await offer_of("video"), "media_no_audio"),
        "audio and video": (await offer_of("audio", "video"), "media_unsupported_media"),
        "no fingerprint": (without_lines(good, "a=fingerprint"), "media_bad_sdp"),
        "no dtls setup": (without_lines(good, "a=setup"), "media_bad_sdp"),
        "no ice credentials": (without_lines(good, "a=ice-"), "media_bad_sdp"),
        "too large": (good + "a=x-padding:" + "p" * 12_000 + "\r\n", "bad_request"),
    }
    for name, (sdp, code) in bad_offers.items():
        error = await e.offer(sdp)
        assert (error["type"], error["code"]) == ("error", code), name
        assert error["message"], name
        assert (await e.socket.request("ping"))["type"] == "reply", name

    # Larger than a socket message may be: refused before it is even parsed.
    await e.socket.send("rtc.offer", sdp="v=0\r\n" + "x" * 17_000)
    assert (await e.socket.wait_for("error"))["code"] == "bad_request"
    # Not a string at all.
    assert (await e.socket.request("rtc.offer", sdp=42))["code"] == "bad_request"

    hub = media_hub()
    assert hub.peer(stage.room.pk, "e") is None
    assert hub.counts()["peers"] == 2
    # E's socket still works end to end: the well-formed offer connects.
    await e.connect_audio()
    await stage.wait_connected(e)
    await wait_until(lambda: hears(e.bot) == {A_TONE}, CONNECT_SECONDS, "E hears A")
    await audio_from_now([b.bot], 1.0)
    assert hears(b.bot, 1.0) == {A_TONE}  # the room never stopped mixing


async def test_a_bad_offer_does_not_cut_a_working_connection(stage: Stage) -> None:
    a = await stage.join("a", A_TONE, seat=1)
    b = await stage.join("b")
    await stage.wait_connected(a, b)
    await wait_until(lambda: hears(b.bot) == {A_TONE}, CONNECT_SECONDS, "B hears A")
    peer = media_hub().peer(stage.room.pk, "a")
    assert (await a.offer("hello"))["code"] == "media_bad_sdp"
    assert (await a.offer(await offer_of("video")))["code"] == "media_no_audio"
    # Well-formed, but no codec aiortc can use: refused inside aiortc, after validation.
    unusable = re.sub(r"a=rtpmap:(\d+) \S+", r"a=rtpmap:\1 nonesuch/48000", await offer_of("audio"))
    assert (await a.offer(unusable))["code"] == "media_bad_sdp"
    assert media_hub().peer(stage.room.pk, "a") is peer and not peer.closed
    await audio_from_now([b.bot], 1.0)
    assert hears(b.bot, 1.0) == {A_TONE}


async def test_a_peer_that_never_completes_ice_is_closed_and_forgotten(
    stage: Stage, settings
) -> None:
    settings.LIVEAUDIO_MEDIA_CONNECT_TIMEOUT = 2.0  # read when the hub is made: first join
    lost = await stage.join("lost", A_TONE, audio=False)
    ghost = await stage.join("ghost", audio=False)
    # `lost` never applies the answer; `ghost` offers candidates nobody answers on.
    assert (await lost.offer())["type"] == "reply"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        sdp = re.sub(
            r"(a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1) \d+",
            rf"\1 {port}",
            await ghost.bot.create_offer(),
        )
        await ghost.bot.close()  # its real port is gone too
        assert (await ghost.offer(sdp))["type"] == "reply"
        hub = media_hub()
        peers = [hub.peer(stage.room.pk, "lost"), hub.peer(stage.room.pk, "ghost")]
        offered_at = time.monotonic()
        assert hub.counts()["peers"] == 2
        await wait_until(lambda: hub.counts()["peers"] == 0, 6.0, "timed-out peers dropped")
    assert time.monotonic() - offered_at > 1.5  # the timeout, not something sooner
    assert all(peer.closed and peer.timed_out for peer in peers)
    assert hub.counts()["rooms"] == 0  # the idle room's mixer went too
    # Both pages are told, so they can offer again at once.
    for guest in (lost, ghost):
        closed = await guest.socket.wait_for("rtc.closed")
        assert closed["reason"] == "timeout" and closed["message"]
    # The socket is fine, and a new offer that completes ICE works.
    assert (await lost.socket.request("ping"))["type"] == "reply"
    lost.bot = stage.bot("lost-again", A_TONE)
    await lost.connect_audio()
    await stage.wait_connected(lost)
    assert hub.counts()["peers"] == 1


async def test_ten_rapid_reconnects_leak_nothing(stage: Stage) -> None:
    tasks_before, threads_before = live_tasks(), decoder_threads()
    previous = await stage.join("a", seat=1, audio=False)  # a seated speaker, reloading
    hub, pk = media_hub(), stage.room.pk
    peers = []
    for i in range(10):
        await previous.socket.leave()
        guest = Guest("a", await Participant.join(stage.room, "a"), stage.bot(f"a{i}", A_TONE))
        stage.guests.append(guest)
        if i % 2:  # connected, then replaced by the next reload while its bot still runs
            await guest.connect_audio()
            await stage.wait_connected(guest)
        else:  # reloaded before the answer was even applied: ICE never completes
            assert (await guest.offer())["type"] == "reply"
        peers.append(hub.peer(pk, "a"))
        assert hub.counts()["peers"] == 1
        previous = guest
    await previous.socket.leave()
    # The server closes each replaced peer itself, and the last one after the grace period,
    # while every bot is still there: no client's goodbye does it for the server.
    await wait_until(
        lambda: all(p.closed and p.connection_state == "closed" for p in peers),
        3.0,
        "every server peer closed",
    )
    assert len(set(map(id, peers))) == 10
    for bot in stage.bots:
        await bot.close()

    def settled() -> bool:
        return (
            hub.counts() == {"rooms": 0, "peers": 0, "level_listeners": 0}
            and live_tasks() <= tasks_before
            and decoder_threads() <= threads_before
        )

    try:
        await wait_until(settled, 5.0)
    except AssertionError:
        leaked = [t.get_coro() for t in live_tasks() - tasks_before]
        raise AssertionError(
            f"counts {hub.counts()}, leaked tasks {leaked}, "
            f"decoder threads {decoder_threads()} (before: {threads_before})"
        ) from None


async def test_a_vanished_client_is_released_after_the_grace_period(stage: Stage) -> None:
    a, b, c = await speakers_and_listener(stage)
    hub, pk = media_hub(), stage.room.pk
    peer = hub.peer(pk, "b")
    dropped_at = time.monotonic()
    b.vanish()
    await b.socket.communicator.disconnect(code=1006)  # abnormal closure: no close frame
    await wait_until(lambda: peer.connection_state == "closed", 3.0, "B's peer closed")
    # The grace period (0.3 s in tests), far sooner than ICE consent would notice (~30 s).
    assert 0.3 <= time.monotonic() - dropped_at < 2.0
    assert hub.peer(pk, "b") is None
    assert hub.counts()["peers"] == 2
    await audio_from_now([a.bot, c.bot], 1.0)
    assert hears(a.bot, 1.0) == {C_TONE}
    assert hears(c.bot, 1.0) == {A_TONE}
