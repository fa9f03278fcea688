"""What one playing media file costs the media worker, at 0 / 100 / 300 listeners.

    .venv/bin/python -m bench.media_load --steps 0,100,300 --window-seconds 10 \
        --server-cpus 0 --bot-cpus 1

The real media worker process (`MediaProcess`, as daphne runs it) and real aiortc listener
bots (recvonly, counting packets, in `--workers` processes); the offers go straight to the
worker, not through a room socket, because the file's cost is all in the worker. At each
step three windows are measured one after the other:
- `silent`:  the listeners and an inaudible speaker, nothing to hear (the baseline);
- `file`:    one file playing (`set_playback`, a 500 Hz / 1 kHz tone MP3 made by
             tests/media_files.py, repeating);
- `speaker`: no file, the speaker audible instead (what the issue compares the file with).
Printed per window: the worker's CPU (% of a core), mixes encoded per tick, tick time, late
ticks, the server-added latency (a frame entering the mix -> sent; for the speaker, from its
packet's arrival, playout included), the player's underruns, and at the listeners packets per
second of audio time and loss. The file's cost is `file` minus `silent`; "no per-listener
cost" means it does not grow with the listeners.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.room_load import BotProcesses, _cpus, _mean_percentiles, proc_cpu_seconds, split
from rooms.media import MediaHub, PlaybackSpec
from rooms.media.report import hub_report
from rooms.media.worker import MediaProcess, WorkerConfig

ROOM = "bench"
SPEAKER = "speaker"
SPEAKER_TONE = 440.0
WINDOWS = ("silent", "file", "speaker")


# -- bot processes: listeners (and the one speaker) -----------------------------------------


def bots_main(conn: Connection, thin: bool = False) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    asyncio.run(_bots(conn, thin))


async def _bots(conn: Connection, thin: bool) -> None:
    """Commands: ("offer", [(name, tone)]) -> offers; ("answer", {name: sdp}); "snapshot"."""
    from bench.bot import Bot
    from rooms.media.patches import restrict_host_candidates_to_loopback

    restrict_host_candidates_to_loopback()
    loop = asyncio.get_running_loop()
    bots: dict[str, Bot] = {}
    while True:
        command, payload = await loop.run_in_executor(None, conn.recv)
        if command == "offer":
            new = {
                name: Bot(
                    name, tone, send=tone is not None, decode=False, thin=thin and tone is None
                )
                for name, tone in payload
            }
            bots.update(new)
            conn.send({name: await bot.create_offer() for name, bot in new.items()})
        elif command == "answer":
            for name, sdp in payload.items():
                await bots[name].accept_answer(sdp)
            conn.send(len(payload))
        elif command == "snapshot":
            conn.send({name: _tap(bot) for name, bot in bots.items()})
        else:
            for bot in bots.values():
                await bot.close()
            conn.send("stopped")
            return


def _tap(bot: Any) -> dict[str, Any]:
    tap = bot.tap
    return {"packets": tap.packets, "first_ts": tap.first_ts, "last_ts": tap.last_ts}


class ListenerProcesses(BotProcesses):
    """Bot processes whose bots are answered by the media worker directly (`bots_main`)."""

    def __init__(self, count: int, *, thin: bool = False) -> None:
        super().__init__(count, bots_main, thin)

    async def join(self, worker: MediaProcess, bots: list[list[tuple[str, float | None]]]) -> None:
        """Offers from each process, answered by the worker, handed back."""
        for pipe, names in zip(self.pipes, bots, strict=True):
            pipe.send(("offer", names))
        for pipe in self.pipes:
            offers = await asyncio.to_thread(pipe.recv)
            answers = {name: await worker.offer(ROOM, name, sdp) for name, sdp in offers.items()}
            pipe.send(("answer", answers))
        for pipe in self.pipes:
            await asyncio.to_thread(pipe.recv)

    async def snapshot(self) -> dict[str, dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(("snapshot", None))
        taps: dict[str, dict[str, Any]] = {}
        for pipe in self.pipes:
            taps.update(await asyncio.to_thread(pipe.recv))
        return taps


# -- one measured window ----------------------------------------------------------------------


@dataclass
class Window:
    name: str
    listeners: int
    seconds: float = 0.0
    worker_cpu: float = 0.0  # % of one core
    worker_cpu_ms_per_tick: float = 0.0  # what a tick costs, however many ticks the CPU allowed
    bots_cpu: float = 0.0
    encodes_per_tick: float = 0.0
    tick_ms_mean: float = 0.0
    late_ticks: int = 0
    ticks: int = 0
    underruns: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    packets_per_audio_second: float = 0.0
    loss: float = 0.0


async def measure(
    worker: MediaProcess, bots: ListenerProcesses, name: str, listeners: int, seconds: float
) -> Window:
    window = Window(name, listeners)
    first_room, first_taps = await _room(worker), await bots.snapshot()
    first_cpu, first_bots = proc_cpu_seconds(worker.pid or 0), bots.cpu_seconds()
    started = time.monotonic()
    latencies = []
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        latencies.append((await _room(worker))["mixer"]["sent_latency_ms"])
    last_room, last_taps = await _room(worker), await bots.snapshot()
    window.seconds = time.monotonic() - started
    window.worker_cpu = 100 * (proc_cpu_seconds(worker.pid or 0) - first_cpu) / window.seconds
    window.bots_cpu = 100 * (bots.cpu_seconds() - first_bots) / window.seconds
    window.latency_ms = _mean_percentiles(latencies)
    _mixer_figures(window, first_room, last_room)
    worker_cpu_seconds = window.worker_cpu / 100 * window.seconds
    window.worker_cpu_ms_per_tick = 1000 * worker_cpu_seconds / window.ticks
    _listener_figures(window, first_taps, last_taps)
    return window


async def wait_connected(worker: MediaProcess, peers: int, timeout: float = 120.0) -> None:
    """Until every peer has connected: DTLS handshakes of a join burst would count as the
    next window's cost otherwise."""
    deadline = time.monotonic() + timeout
    while (await _room(worker))["connected_peers"] < peers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {peers} peers connected within {timeout:.0f} s")
        await asyncio.sleep(0.5)


def forget_latencies(hub: MediaHub) -> None:
    """Run in the worker: each window's latency figures are its own, not the last window's."""
    for _, media in hub.room_media():
        media.mixer.stats.queued_latency.clear()
        media.mixer.stats.sent_latency.clear()


async def _room(worker: MediaProcess) -> dict[str, Any]:
    rooms = {room["room"]: room for room in await worker.query(hub_report)}
    return rooms[ROOM]


def _mixer_figures(window: Window, first: dict[str, Any], last: dict[str, Any]) -> None:
    before, after = first["mixer"], last["mixer"]
    ticks = max(1, after["ticks"] - before["ticks"])
    window.ticks = ticks
    window.late_ticks = after["late_ticks"] - before["late_ticks"]
    window.encodes_per_tick = (after["encodes"] - before["encodes"]) / ticks
    busy = after["tick_ms_mean"] * after["ticks"] - before["tick_ms_mean"] * before["ticks"]
    window.tick_ms_mean = busy / ticks
    played, playing = first["playback"], last["playback"]
    if played and playing and played["key"] == playing["key"]:
        window.underruns = playing["underruns"] - played["underruns"]


def _listener_figures(window: Window, first: dict[str, Any], last: dict[str, Any]) -> None:
    """Packets a listener got per second of the mix's RTP time, and gaps in that timeline."""
    rates, received_total, expected_total = [], 0, 0
    for name, end in last.items():
        start = first.get(name)
        if name == SPEAKER or start is None or start["last_ts"] is None:
            continue
        received = end["packets"] - start["packets"]
        audio_samples = end["last_ts"] - start["last_ts"]
        if audio_samples <= 0:
            continue
        rates.append(received / (audio_samples / 48000))
        received_total += received
        expected_total += max(received, audio_samples // 960)
    if rates:
        window.packets_per_audio_second = statistics.fmean(rates)
        window.loss = 1 - received_total / max(expected_total, 1)


def report(w: Window) -> Window:
    latency = " ".join(f"{k}={v:.1f}" for k, v in w.latency_ms.items()) or "-"
    print(
        f"L={w.listeners:<4} {w.name:<8} worker_cpu={w.worker_cpu:5.1f}% "
        f"({w.worker_cpu_ms_per_tick:.3f} ms/tick) "
        f"bots_cpu={w.bots_cpu:5.1f}% encodes/tick={w.encodes_per_tick:.2f} "
        f"tick={w.tick_ms_mean:.3f}ms late_ticks={w.late_ticks}/{w.ticks} "
        f"sent_latency_ms[{latency}] underruns={w.underruns} "
        f"listener_pps={w.packets_per_audio_second:.2f} loss={w.loss:.3%}",
        flush=True,
    )
    return w


# -- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> list[Window]:
    from tests.media_files import make_tone_file

    media = make_tone_file(Path(tempfile.mkdtemp()) / "tone.mp3")
    playing = PlaybackSpec("bench", str(media), 0, paused=False, repeat=True, volume=30)
    if args.server_cpus:
        os.sched_setaffinity(0, args.server_cpus)  # the worker inherits it when spawned
    worker = MediaProcess(WorkerConfig(loopback_only=True, connect_timeout=60.0))
    if args.bot_cpus:
        os.sched_setaffinity(0, args.bot_cpus)  # this process and the bots from here on
    # The speaker gets a process of its own.
    bots = ListenerProcesses(1 + args.workers, thin=args.thin)
    windows: list[Window] = []
    try:
        await bots.join(worker, [[(SPEAKER, SPEAKER_TONE)], *[[] for _ in range(args.workers)]])
        joined = 0
        for step in sorted({int(s) for s in args.steps.split(",")}):
            names: list[tuple[str, float | None]] = [
                (f"listener{i}", None) for i in range(joined, step)
            ]
            if names:
                for start in range(0, len(names), args.batch):
                    batch = names[start : start + args.batch]
                    await bots.join(worker, [[], *split(batch, args.workers)])
                joined = step
            await wait_connected(worker, joined + 1)
            await asyncio.sleep(args.settle)
            for name in WINDOWS:
                worker.set_audible(ROOM, {SPEAKER} if name == "speaker" else set())
                worker.set_playback(ROOM, playing if name == "file" else None)
                await asyncio.sleep(1.0)  # the change reaches the listeners
                await worker.query(forget_latencies)
                window = await measure(worker, bots, name, joined, args.window_seconds)
                windows.append(report(window))
    finally:
        bots.stop()
        await worker.close()
    summary(windows)
    return windows


def summary(windows: list[Window]) -> None:
    by = {(w.name, w.listeners): w for w in windows}
    print("\n== the file's cost (file - silent) ==")
    for listeners in sorted({w.listeners for w in windows}):
        silent, file, speaker = (by.get((n, listeners)) for n in WINDOWS)
        if silent is None or file is None or speaker is None:
            continue
        print(
            f"L={listeners:<4} worker CPU +{file.worker_cpu - silent.worker_cpu:5.1f}% of a core, "
            f"+{file.worker_cpu_ms_per_tick - silent.worker_cpu_ms_per_tick:.3f} ms a tick "
            f"(a speaker: +{speaker.worker_cpu - silent.worker_cpu:5.1f}%, "
            f"+{speaker.worker_cpu_ms_per_tick - silent.worker_cpu_ms_per_tick:.3f} ms), "
            f"tick +{file.tick_ms_mean - silent.tick_ms_mean:.3f} ms, "
            f"encodes/tick {file.encodes_per_tick:.2f} vs {silent.encodes_per_tick:.2f} silent, "
            f"{speaker.encodes_per_tick:.2f} with a speaker"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="0,100,300", help="listener counts")
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="pause after the joins have connected"
    )
    parser.add_argument("--workers", type=int, default=2, help="listener bot processes")
    parser.add_argument("--batch", type=int, default=25, help="listeners joined at once")
    parser.add_argument(
        "--thin", action="store_true", help="thin listener bots: RTP headers counted, no SRTP"
    )
    parser.add_argument("--server-cpus", type=_cpus, default=None, help="e.g. 0: the worker")
    parser.add_argument("--bot-cpus", type=_cpus, default=None, help="e.g. 1: the bots")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
