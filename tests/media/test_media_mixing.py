"""Who hears whom, with real aiortc peers on loopback and one RoomMixer."""

from __future__ import annotations

import time

import pytest
from media_helpers import A_TONE, C_TONE, TONES, X_TONE, Room, wait_until


async def seat_a_and_c_with_listener_b(room: Room) -> None:
    await room.join("A", A_TONE, audible=True)
    await room.join("B", None, audible=False)
    await room.join("C", C_TONE, audible=True)
    await room.wait_connected()
    await wait_until(lambda: room.bots["B"].hears(TONES) == {A_TONE, C_TONE})


@pytest.mark.asyncio
async def test_speakers_hear_each_other_never_themselves_nor_inaudible_senders(room: Room) -> None:
    await room.join("X", X_TONE, audible=False)  # a listener whose browser sends a tone
    await room.join("D", None, audible=False)
    await seat_a_and_c_with_listener_b(room)
    bots = room.bots
    await wait_until(lambda: bots["A"].hears(TONES) == {C_TONE})
    await wait_until(lambda: bots["C"].hears(TONES) == {A_TONE})
    await wait_until(lambda: bots["X"].hears(TONES) == {A_TONE, C_TONE})
    # Over the last 1.5 s nobody heard the inaudible sender.
    await wait_until(lambda: min(bot.heard_seconds() for bot in bots.values()) >= 1.5)
    for bot in bots.values():
        assert X_TONE not in bot.hears(TONES, seconds=1.5), bot.name
    # A's mix, C's mix, and one mix shared by the audience B, D, X.
    assert room.mixer.encoder_count == 3
    assert room.mixer.stats.max_encodes_per_tick == 3


@pytest.mark.asyncio
async def test_unseated_speaker_goes_silent_within_a_second(room: Room) -> None:
    await seat_a_and_c_with_listener_b(room)
    started = time.monotonic()
    room.mixer.set_audible("A", False)
    await wait_until(lambda: A_TONE not in room.bots["B"].hears(TONES, seconds=0.3), 1.0)
    assert time.monotonic() - started < 1.0
    assert C_TONE in room.bots["B"].hears(TONES, seconds=0.3)


@pytest.mark.asyncio
async def test_local_mute_removes_a_speaker_for_that_listener_only(room: Room) -> None:
    await seat_a_and_c_with_listener_b(room)
    room.mixer.set_local_mutes("B", {"C"})
    await wait_until(lambda: room.bots["B"].hears(TONES, seconds=0.3) == {A_TONE})
    assert room.bots["A"].hears(TONES, seconds=0.3) == {C_TONE}
    room.mixer.set_local_mutes("B", set())
    await wait_until(lambda: room.bots["B"].hears(TONES, seconds=0.3) == {A_TONE, C_TONE})


@pytest.mark.asyncio
async def test_mixed_packets_carry_their_arrival_and_none_is_lost(room: Room) -> None:
    """The latency stamps the benchmark reads exist (figures: bench/room_load.py and
    docs/performance.md; a test asserts no timing, which would flake on a loaded machine)."""
    await seat_a_and_c_with_listener_b(room)
    stats = await room.bots["B"].receive_stats()
    assert stats.packets_received > 0
    assert stats.packets_lost == 0
    queued = sorted(room.mixer.stats.queued_latency)
    assert queued, "no mixed packet carried a source arrival time"
    assert all(latency >= 0 for latency in queued)


async def sequence_losses(bot) -> int:
    """What the listener's own RTP stack counts lost: gaps in the sequence numbers."""
    report = await bot.pc.getStats()
    return sum(s.packetsLost for s in report.values() if s.type == "inbound-rtp")


@pytest.mark.asyncio
async def test_a_stalled_mixer_leaves_a_gap_its_listeners_see(room: Room) -> None:
    """Issue 14, honest loss: a mixer far behind skips ahead, and the audio it never made
    must show as lost (timestamps and sequence numbers jump by the time skipped), not make
    the room's audio run slow without a trace."""
    await room.join("A", A_TONE, audible=True)
    listener = await room.join("B", None, audible=False)
    await room.wait_connected()
    await wait_until(lambda: listener.tap.packets >= 25, timeout=10)
    before = await listener.receive_stats()
    assert before.packets_lost == 0 and await sequence_losses(listener) == 0

    time.sleep(0.4)  # the fault: the event loop (the mixer's clock with it) is held 400 ms
    await wait_until(lambda: room.mixer.stats.resyncs >= 1)
    received = listener.tap.packets
    await wait_until(lambda: listener.tap.packets >= received + 10, timeout=10)

    skipped = room.mixer.stats.skipped_ticks
    assert skipped >= 10, room.mixer.stats  # ~20 ticks of 20 ms
    after = await listener.receive_stats()
    assert after.packets_lost >= skipped - 1, (after, skipped)  # by the timestamps
    assert await sequence_losses(listener) >= skipped - 1  # by the sequence numbers


@pytest.mark.asyncio
async def test_a_thin_listener_bot_counts_the_mix_without_unprotecting_it(room: Room) -> None:
    """The benchmarks' thin listener (bench.bot, `thin=True`) counts every packet of the mix
    from the RTP headers, and aiortc's receiver (SRTP, RTP handling) sees none of them."""
    await room.join("A", A_TONE, audible=True)
    thin = await room.join("T", None, audible=False, thin=True)
    await room.wait_connected()
    await wait_until(lambda: thin.tap.packets >= 50, timeout=10)
    stats = await thin.receive_stats()
    assert stats.packets_lost == 0, stats
    report = await thin.pc.getStats()
    inbound = [s for s in report.values() if s.type == "inbound-rtp"]
    assert sum(s.packetsReceived for s in inbound) == 0, inbound
