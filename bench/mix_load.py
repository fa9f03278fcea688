"""In-process load test of RoomMixer alone: no network, no WebRTC.

    .venv/bin/python -m bench.mix_load --listeners 1000 --speakers 4 --seconds 5

S speakers send a tone each, N listeners hear everyone; a few listeners mute a
speaker locally to create extra mixes. Prints CPU per tick, encodes per tick and
the share of the 20 ms budget used. The tracks are drained like RTCRtpSenders do.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from rooms.media import PlayoutFrame, RoomMixer
from rooms.media.codec import FRAME_SAMPLES, SAMPLE_RATE


class ToneSource:
    """A FrameSource with a new 20 ms tone frame every pull, stamped as just arrived."""

    def __init__(self, frequency: float) -> None:
        self.frequency = frequency
        self.tick = 0

    def pull(self) -> PlayoutFrame:
        self.tick += 1
        n = np.arange(self.tick * FRAME_SAMPLES, (self.tick + 1) * FRAME_SAMPLES)
        pcm = (5000 * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)).astype(np.int16)
        return PlayoutFrame(pcm=pcm, arrival=time.monotonic())

    def clear(self) -> None:
        pass


def build_room(listeners: int, speakers: int, local_mutes: int) -> RoomMixer:
    mixer = RoomMixer()
    for s in range(speakers):
        pid = f"speaker{s}"
        mixer.add_participant(pid)
        mixer.attach_source(pid, ToneSource(300 + 110 * s))
        mixer.set_audible(pid, True)
    for n in range(listeners):
        mixer.add_participant(f"listener{n}")
    for n in range(min(local_mutes, listeners)):
        mixer.set_local_mutes(f"listener{n}", {f"speaker{n % max(1, speakers)}"})
    return mixer


async def drain(mixer: RoomMixer) -> None:
    """Empty every track's queue the way a sender's recv() loop would."""
    for pid in mixer.participants:
        track = mixer.add_participant(pid)  # returns the existing track
        while track.pending:
            await track.recv()


async def run(args: argparse.Namespace) -> None:
    mixer = build_room(args.listeners, args.speakers, args.local_mutes)
    cpu_start, wall_start = time.process_time(), time.monotonic()
    mixer.start()
    while time.monotonic() - wall_start < args.seconds:
        await asyncio.sleep(0.1)
        await drain(mixer)
    await mixer.stop()
    cpu = time.process_time() - cpu_start
    stats = mixer.stats
    ticks = max(1, stats.ticks)
    print(f"listeners={args.listeners} speakers={args.speakers} local_mutes={args.local_mutes}")
    print(f"ticks={stats.ticks} late_ticks={stats.late_ticks} resyncs={stats.resyncs}")
    print(f"encodes/tick={stats.encodes / ticks:.1f} (max {stats.max_encodes_per_tick})")
    print(
        f"tick time: mean {stats.tick_seconds / ticks * 1000:.3f} ms, "
        f"max {stats.max_tick_seconds * 1000:.3f} ms "
        f"({stats.tick_seconds / ticks / 0.02:.1%} of the 20 ms budget)"
    )
    print(f"process CPU incl. draining: {cpu / ticks * 1000:.3f} ms/tick, {cpu / args.seconds:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--local-mutes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
