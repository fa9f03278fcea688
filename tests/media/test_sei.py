"""SEI on the media side: a speaker's SEI is placed on their RTP timeline and released with
the mix packet that carries that audio (rooms/media/sei.py)."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest
from aiortc.rtp import RtpPacket
from media_helpers import A_TONE, Room, wait_until

from bench.bot import BURST_FRAMES, FRAMES_PER_SECOND
from rooms.media import PlayoutFrame, RoomMixer
from rooms.media.codec import FRAME_SAMPLES, SAMPLE_RATE, decode_pcm, new_opus_decoder
from rooms.media.player import MEDIA_SOURCE_ID
from rooms.media.sei import (
    MAX_HOLD_TICKS,
    NTP_EPOCH_OFFSET,
    Sei,
    SeiQueue,
    SeiRelease,
    SenderClock,
    signed_distance,
)

SEI = Sei("A", "main", '{"beat":1}')


def ntp_of(unix_seconds: float) -> int:
    return int((unix_seconds + NTP_EPOCH_OFFSET) * (1 << 32))


# -- the sender's clock ------------------------------------------------------------------------


def test_a_clock_without_audio_places_nothing() -> None:
    assert SenderClock().timestamp_at(time.time() * 1000) is None


def test_before_any_sender_report_an_sei_goes_with_the_newest_audio() -> None:
    clock = SenderClock()
    clock.packet(10_000)
    clock.packet(9_040)  # late, reordered: not newer
    assert clock.timestamp_at(None) == 10_960
    assert clock.timestamp_at(time.time() * 1000) == 10_960


def test_a_sender_report_maps_the_senders_wall_clock_to_its_rtp_time() -> None:
    clock = SenderClock()
    clock.packet(1_000_000)
    clock.sender_report(ntp_of(1_700_000_000.0), 1_000_000)
    # 100 ms after the report's moment is 4,800 samples later on the RTP clock.
    assert clock.timestamp_at(1_700_000_000_100.0) == 1_004_800
    assert clock.timestamp_at(1_699_999_999_900.0) == 1_000_000 - 4_800


def test_the_mapping_is_the_median_of_the_last_reports() -> None:
    clock = SenderClock()
    clock.packet(1_000_000)
    for at, rtp in [(0.0, 1_000_000), (1.0, 1_048_000 + 960), (2.0, 1_096_000 - 480)]:
        clock.sender_report(ntp_of(1_700_000_000.0 + at), rtp)
    # The three place 0.5 s after the first at +0, +960 and -480 samples off: the median wins.
    assert clock.timestamp_at(1_700_000_000_500.0) == 1_024_000


def test_a_mapping_far_from_the_audio_that_came_is_not_trusted() -> None:
    clock = SenderClock()
    clock.packet(1_000_000)
    clock.sender_report(ntp_of(1_700_000_000.0), 1_000_000)
    an_hour_later = 1_700_003_600_000.0  # a browser whose clock jumped
    assert clock.timestamp_at(an_hour_later) == 1_000_960


def test_the_mapping_holds_across_the_rtp_wrap_around() -> None:
    clock = SenderClock()
    clock.packet(0xFFFFFF00)
    clock.sender_report(ntp_of(1_700_000_000.0), 0xFFFFFF00)
    assert clock.timestamp_at(1_700_000_000_010.0) == (0xFFFFFF00 + 480) & 0xFFFFFFFF
    assert signed_distance(5, 0xFFFFFFFB) == 10


# -- the queue of one source ---------------------------------------------------------------


def test_an_sei_is_due_with_the_frame_that_holds_its_timestamp() -> None:
    queue = SeiQueue()
    queue.add(SEI, 10_000 + 500)
    assert queue.due(9_040, pulled=True) == []  # 9,040-10,000: before it
    assert queue.due(None, pulled=True) == []  # a held frame plays no slot
    # 10,000-10,960 holds 10,500: 500 samples into the frame.
    assert queue.due(10_000, pulled=True) == [(500, SEI)]
    assert len(queue) == 0


def test_an_sei_whose_audio_was_already_mixed_goes_at_once() -> None:
    queue = SeiQueue()
    queue.add(SEI, 5_000)
    assert queue.due(20_000, pulled=True) == [(0, SEI)]


def test_an_sei_without_a_place_goes_with_the_next_frame_and_none_waits_forever() -> None:
    queue = SeiQueue()
    queue.add(SEI, None)
    assert queue.due(None, pulled=False) == []
    assert queue.due(None, pulled=True) == [(0, SEI)]
    queue.add(SEI, 10**6)  # audio that never comes
    released = [queue.due(None, pulled=False) for _ in range(MAX_HOLD_TICKS)]
    assert released[:-1] == [[]] * (MAX_HOLD_TICKS - 1) and released[-1] == [(0, SEI)]


# -- the mixer -----------------------------------------------------------------------------


class RtpToneSource:
    """A FrameSource whose frames play RTP slots from `first`, one per pull."""

    def __init__(self, first: int) -> None:
        self.next = first

    def pull(self) -> PlayoutFrame:
        slot, self.next = self.next, self.next + FRAME_SAMPLES
        return PlayoutFrame(np.zeros(FRAME_SAMPLES, np.int16), arrival=None, timestamp=slot)

    def clear(self) -> None:
        pass


def test_the_mixer_releases_an_sei_with_the_tick_that_mixes_its_audio() -> None:
    releases: list[SeiRelease] = []
    mixer = RoomMixer(on_sei=releases.append)
    track = mixer.add_participant("L")
    mixer.add_participant("A")
    mixer.attach_source("A", RtpToneSource(first=50_000))
    mixer.set_audible("A", True)
    assert mixer.send_sei("A", SEI, 50_000 + 3 * FRAME_SAMPLES + 10)
    for _ in range(3):
        mixer.tick()
    assert releases == []
    mixer.tick()  # the fourth frame: 52,880-53,840
    [release] = releases
    assert release.seis == (SEI,)
    # Stamped with the tick's outbound RTP timestamp plus its place in the frame, on the
    # room's one timeline, which every listener's wire starts from.
    [(rtp_timestamp, _)] = release.items
    assert rtp_timestamp == (mixer.rtp_origin + 4 * FRAME_SAMPLES + 10) & 0xFFFFFFFF
    assert track.timestamp_origin == mixer.rtp_origin
    assert mixer.new_track().timestamp_origin == mixer.rtp_origin


def test_the_mixer_refuses_an_sei_from_a_source_nobody_hears() -> None:
    releases: list[SeiRelease] = []
    mixer = RoomMixer(on_sei=releases.append)
    mixer.add_participant("A")
    mixer.attach_source("A", RtpToneSource(first=0))
    assert not mixer.send_sei("A", SEI)  # not audible
    assert not mixer.send_sei(MEDIA_SOURCE_ID, Sei("H", "media", "{}"))  # nothing plays
    mixer.set_audible("A", True)
    assert mixer.send_sei("A", SEI, 10**6)
    mixer.set_audible("A", False)  # muted before its audio came: what waited is dropped
    for _ in range(MAX_HOLD_TICKS + 1):
        mixer.tick()
    assert releases == []


def test_a_media_sei_goes_with_the_players_next_frame() -> None:
    releases: list[SeiRelease] = []
    mixer = RoomMixer(on_sei=releases.append)
    mixer.add_participant("L")
    mixer.set_media(RtpToneSource(first=0))  # any FrameSource plays as the media
    media_sei = Sei("H", "media", '{"line":"la la"}')
    assert mixer.send_sei(MEDIA_SOURCE_ID, media_sei)
    mixer.tick()
    assert [r.seis for r in releases] == [(media_sei,)]


# -- over real peers -------------------------------------------------------------------------


class Capture:
    """Every packet a bot receives: (RTP timestamp, payload)."""

    def __init__(self, tap: object) -> None:
        self.packets: list[tuple[int, bytes]] = []
        inner = tap.add  # type: ignore[attr-defined]

        def add(packet: RtpPacket) -> object:
            self.packets.append((packet.timestamp, packet.payload))
            return inner(packet)

        tap.add = add  # type: ignore[attr-defined]

    def onsets(self) -> list[int]:
        """RTP timestamps of the packets where a tone burst begins (after 0.5 s quiet)."""
        decoder, quiet, found = new_opus_decoder(), 0, []
        n = np.arange(FRAME_SAMPLES)
        basis = np.exp(-2j * np.pi * A_TONE * n / SAMPLE_RATE) * 2 / FRAME_SAMPLES
        for timestamp, payload in list(self.packets):
            pcm = decode_pcm(decoder, payload)
            if pcm is None or pcm.size < FRAME_SAMPLES:
                continue
            if abs(np.dot(pcm[:FRAME_SAMPLES].astype(np.float32), basis)) < 1500:
                quiet += 1
                continue
            if quiet >= FRAMES_PER_SECOND // 2:
                found.append(timestamp)
            quiet = 0
        return found


@pytest.mark.asyncio
async def test_an_sei_sent_ahead_of_its_audio_reaches_the_listener_with_that_audio() -> None:
    """The speaker (an aiortc bot) plays a 200 ms burst at each whole second of the monotonic
    clock and sends an SEI 300 ms *before* each burst, stamped with the burst's capture time.
    The listener's packet stamped with the SEI's RTP timestamp must be where the burst
    begins: sent at once, or placed by arrival, it would be 300 ms early."""
    releases: list[SeiRelease] = []
    room = Room()
    room.mixer = RoomMixer(on_sei=releases.append)
    room.mixer.start()
    try:
        await room.join("A", A_TONE, audible=True)
        room.bots["A"].tone.bursts = True
        listener = await room.join("L", None, audible=False)
        capture = Capture(listener.tap)
        await room.wait_connected()
        clock = room.peers["A"].clock
        await wait_until(lambda: clock.reports > 0, timeout=15)  # aiortc: ~1 s
        beats = 4
        for beat in range(beats):
            onset = math.ceil(time.monotonic()) + 1.0  # a burst at least 0.7 s away
            await asyncio.sleep(max(0.0, onset - 0.3 - time.monotonic()))
            capture_ms = (time.time() - (time.monotonic() - onset)) * 1000
            sei = Sei("A", "main", f'{{"beat":{beat}}}')
            timestamp = clock.timestamp_at(capture_ms)
            assert room.mixer.send_sei("A", sei, timestamp)
        await wait_until(lambda: len(releases) == beats, timeout=10)
        await asyncio.sleep(0.5)  # the last burst's packets
        onsets = capture.onsets()
        for ((rtp_timestamp, _),) in (release.items for release in releases):
            nearest = min(onsets, key=lambda o: abs(signed_distance(o, rtp_timestamp)))
            offset_ms = signed_distance(rtp_timestamp, nearest) * 1000 / SAMPLE_RATE
            # aiortc's sender reports name the last packet sent, not the moment they are
            # sent (a browser's extrapolate): up to a frame off, plus the onset's own frame.
            assert abs(offset_ms) <= 2 * 20 + 1, (offset_ms, onsets, releases)
        assert BURST_FRAMES * 20 < 300  # the bursts are shorter than the SEI's lead
    finally:
        await room.close()
