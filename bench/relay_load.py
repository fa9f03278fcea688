"""What one relay worker carries on one core: listeners fed by a mixer over the relay tier.

    .venv/bin/python -m bench.relay_load --steps 500,1000,2000 --relays 1 \
        --relay-cpus 0 --bot-cpus 1 --window-seconds 10 --thin

Real processes on the machine's Redis: a mixer and `--relays` relay workers
(`python -m rooms.media.node`, the relays pinned to `--relay-cpus`, the mixer with the bots),
driven by this process's `RemoteMedia` as a daphne process would (offers go to the workers
directly, not through a room socket: the relay's cost is all in the relay). One speaker
(440 Hz) on the mixer; at each step, listeners join (placed on the least-loaded relay) and
one window is measured. Printed per window: each relay's CPU (% of a core) and per
listener, the bots' CPU, and at the listeners packets per second of audio time (50 is real
time) and loss (received against the mix's own RTP timeline, so a late or dropped packet
counts whether or not it left a sequence gap). With two relays, two probe listeners (one on
each, in one bot process, one clock) also give the skew between them: for each RTP timestamp
both received, the difference of their arrival times (`--relays 2`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.media_load import SPEAKER, SPEAKER_TONE, _listener_figures, _tap
from bench.room_load import BotProcesses, _cpus, proc_cpu_seconds, split
from bench.server_probe import rss_mb
from rooms.media.remote import RemoteMedia

ROOM = "relay-bench"
PROBES = ("probe-a", "probe-b")


def bots_main(conn: Connection, thin: bool) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_bots(conn, thin))


async def _bots(conn: Connection, thin: bool) -> None:
    """As bench.media_load's bots, and probes that keep each packet's arrival time."""
    from bench.bot import Bot
    from rooms.media.patches import restrict_host_candidates_to_loopback

    restrict_host_candidates_to_loopback()
    loop = asyncio.get_running_loop()
    bots: dict[str, Bot] = {}
    arrivals: dict[str, dict[int, float]] = {}
    while True:
        command, payload = await loop.run_in_executor(None, conn.recv)
        if command == "offer":
            new = {}
            for name, tone in payload:
                bot = Bot(
                    name, tone, send=tone is not None, decode=False, thin=thin and tone is None
                )
                if name in PROBES:
                    arrivals[name] = _keep_arrivals(bot)
                new[name] = bot
            bots.update(new)
            conn.send({name: await bot.create_offer() for name, bot in new.items()})
        elif command == "answer":
            for name, sdp in payload.items():
                await bots[name].accept_answer(sdp)
            conn.send(len(payload))
        elif command == "snapshot":
            taps = {n: _tap(b) for n, b in bots.items()}
            conn.send((taps, {n: dict(a) for n, a in arrivals.items()}))
            for kept in arrivals.values():
                kept.clear()
        else:
            for bot in bots.values():
                await bot.close()
            conn.send("stopped")
            return


def _keep_arrivals(bot: Any) -> dict[int, float]:
    kept: dict[int, float] = {}
    count = bot.tap.count

    def counting(timestamp: int, now: float) -> None:
        kept.setdefault(timestamp, now)
        count(timestamp, now)

    bot.tap.count = counting
    return kept


class Listeners(BotProcesses):
    def __init__(self, count: int, thin: bool) -> None:
        super().__init__(count, bots_main, thin)

    async def join(self, front: RemoteMedia, bots: list[list[tuple[str, float | None]]]) -> None:
        for pipe, names in zip(self.pipes, bots, strict=True):
            pipe.send(("offer", names))
        for pipe in self.pipes:
            offers = await asyncio.to_thread(pipe.recv)
            answers = {}
            for name, sdp in offers.items():
                answers[name] = await front.offer(ROOM, name, sdp, listener=name != SPEAKER)
            pipe.send(("answer", answers))
        for pipe in self.pipes:
            await asyncio.to_thread(pipe.recv)

    async def snapshot(self) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
        for pipe in self.pipes:
            pipe.send(("snapshot", None))
        taps: dict[str, Any] = {}
        arrivals: dict[str, dict[int, float]] = {}
        for pipe in self.pipes:
            got_taps, got_arrivals = await asyncio.to_thread(pipe.recv)
            taps.update(got_taps)
            arrivals.update(got_arrivals)
        return taps, arrivals


class Window:
    def __init__(self, listeners: int) -> None:
        self.listeners = listeners
        self.name = "relay"
        self.seconds = 0.0
        self.relay_cpu: dict[str, float] = {}
        self.relay_peers: dict[str, int] = {}
        self.relay_rss_mb: dict[str, float] = {}
        self.mixer_cpu = 0.0
        self.bots_cpu = 0.0
        self.packets_per_audio_second = 0.0
        self.loss = 0.0
        self.skew_ms: dict[str, float] = {}


async def peers_per_worker(front: RemoteMedia) -> dict[str, int]:
    placed = await front.registry.peers(ROOM)
    counts: dict[str, int] = {}
    for name in placed.values():
        counts[name] = counts.get(name, 0) + 1
    return counts


async def wait_flowing(bots: Listeners, names: set[str], timeout: float = 180.0) -> None:
    """Until every listener has had audio: handshakes of a join burst are not the window's."""
    deadline = time.monotonic() + timeout
    while True:
        taps, _ = await bots.snapshot()
        waiting = [n for n in names if not taps.get(n, {}).get("packets")]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} listeners got no audio in {timeout:.0f} s")
        await asyncio.sleep(1.0)


async def measure(
    front: RemoteMedia, bots: Listeners, pids: dict[str, int], listeners: int, seconds: float
) -> Window:
    window = Window(listeners)
    first_taps, _ = await bots.snapshot()
    first_cpu = {name: proc_cpu_seconds(pid) for name, pid in pids.items()}
    first_bots = bots.cpu_seconds()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    last_taps, arrivals = await bots.snapshot()
    window.seconds = time.monotonic() - started
    cpu = {n: 100 * (proc_cpu_seconds(p) - first_cpu[n]) / window.seconds for n, p in pids.items()}
    window.mixer_cpu = cpu.pop("m1")
    window.relay_cpu = cpu
    window.relay_peers = {n: c for n, c in (await peers_per_worker(front)).items() if n in cpu}
    window.relay_rss_mb = {n: rss_mb(pids[n]) for n in cpu}
    window.bots_cpu = 100 * (bots.cpu_seconds() - first_bots) / window.seconds
    _listener_figures(window, first_taps, last_taps)  # type: ignore[arg-type]
    a, b = (arrivals.get(p, {}) for p in PROBES)
    both = sorted(set(a) & set(b))
    if both:
        skews = sorted(abs(a[ts] - b[ts]) * 1000 for ts in both)
        window.skew_ms = {
            "p50": statistics.median(skews),
            "p95": skews[int(0.95 * (len(skews) - 1))],
            "max": skews[-1],
        }
    return window


def report(w: Window) -> None:
    relays = " ".join(
        f"{n}={c:.1f}% ({w.relay_peers.get(n, 0)} peers, "
        f"{c / max(w.relay_peers.get(n, 0), 1):.4f}%/listener, rss {w.relay_rss_mb[n]:.0f} MB)"
        for n, c in sorted(w.relay_cpu.items())
    )
    skew = " ".join(f"{k}={v:.2f}" for k, v in w.skew_ms.items()) or "-"
    print(
        f"L={w.listeners:<5} relays[{relays}] mixer={w.mixer_cpu:.1f}% bots={w.bots_cpu:.1f}% "
        f"listener_pps={w.packets_per_audio_second:.2f} loss={w.loss:.3%} "
        f"relay_skew_ms[{skew}]",
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    from tests.media.cluster_helpers import Cluster

    cluster = Cluster(connect_timeout=60.0)  # a join burst's handshakes take a while
    relay_pin = (
        ("taskset", "-c", ",".join(map(str, sorted(args.relay_cpus)))) if args.relay_cpus else ()
    )
    other_pin = (
        ("taskset", "-c", ",".join(map(str, sorted(args.bot_cpus)))) if args.bot_cpus else ()
    )
    if args.bot_cpus:
        os.sched_setaffinity(0, args.bot_cpus)
    cluster.start("mixer", "m1", other_pin)
    relays = [f"r{i + 1}" for i in range(args.relays)]
    for name in relays:
        cluster.start("relay", name, relay_pin)
    front = cluster.front()
    bots = Listeners(1 + args.workers, args.thin)
    try:
        await cluster.wait_for_workers({"m1", *relays})
        pids = {name: process.pid for name, process in cluster.workers.items()}
        await bots.join(front, [[(SPEAKER, SPEAKER_TONE)], *[[] for _ in range(args.workers)]])
        front.set_audible(ROOM, {SPEAKER}, revision=1)
        joined = 0
        probes = list(PROBES) if args.relays == 2 else []
        for step in sorted({int(s) for s in args.steps.split(",")}):
            names = [(f"listener{i}", None) for i in range(joined, step - len(probes))]
            names = [(p, None) for p in probes] + names
            probes = []
            for start in range(0, len(names), args.batch):
                batch: list[tuple[str, float | None]] = names[start : start + args.batch]
                per_worker = split(batch, args.workers)
                if batch and batch[0][0] in PROBES:
                    per_worker = [batch[:2], *split(batch[2:], args.workers - 1)]
                await bots.join(front, [[], *per_worker])
            joined = step
            await wait_flowing(bots, {n for n, _ in names})
            await asyncio.sleep(args.settle)
            report(await measure(front, bots, pids, joined, args.window_seconds))
    finally:
        bots.stop()
        await cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="500,1000,2000", help="listener counts")
    parser.add_argument("--relays", type=int, default=1)
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="listener bot processes")
    parser.add_argument("--batch", type=int, default=50, help="listeners joined at once")
    parser.add_argument("--thin", action="store_true", help="thin bots: RTP headers counted")
    parser.add_argument("--relay-cpus", type=_cpus, default=None, help="e.g. 0: the relays")
    parser.add_argument("--bot-cpus", type=_cpus, default=None, help="e.g. 1: mixer and bots")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
