"""Room load benchmark: S speaker bots + L listener bots against a running server.

    LIVEAUDIO_SQLITE_PATH=/tmp/bench/db.sqlite3 .venv/bin/python -m bench.room_load \
        --server http://127.0.0.1:8100 --speakers 4 --steps 0,50,100,200,300

The server must run with LIVEAUDIO_MEDIA_STATS=1 (its /internal/media-stats/ gives
latency, CPU times and RSS) and LIVEAUDIO_ICE_LOOPBACK_ONLY=1; `--spawn-server`
starts such a daphne on a free port instead. The bench plays the integrator: it
creates a fresh room (manage.py shell) and mints tokens from the server's database.

Bots run in `--workers` processes (one Python process cannot drive hundreds of
aiortc peers). Listeners are cheap: recvonly, no decoding, they count packets and
gaps in the mix's RTP timeline; `--probes` of them also decode to time the tone
bursts of speaker 0 and check which tones they hear. Listeners are added step by
step and kept; each step is measured over `--step-seconds`.

On a small machine the bots compete with the server for the same cores and their send
timing jitters, which the server's adaptive playout then absorbs as delay: with
`--server-cpus 0 --bot-cpus 1` the spawned server has one core and the bots the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TONES = [440.0, 554.0, 660.0, 784.0, 880.0, 988.0, 1109.0]
LOSS_TARGET = 0.005
PACKETS_PER_SECOND = 50  # one 20 ms Opus packet each, per listener
T = TypeVar("T")


# -- worker process: drives bots --------------------------------------------------------


@dataclass
class BotSpec:
    user: str
    token: str
    seat: int | None = None  # a speaker
    tone: float | None = None
    bursts: bool = False
    probe: tuple[float, ...] = ()
    thin: bool = False  # count RTP headers without unprotecting (bench.bot.Bot(thin=True))


def worker_main(conn: Connection, server: str, app_id: int, room: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    asyncio.run(_worker(conn, server, app_id, room))


async def _worker(conn: Connection, server: str, app_id: int, room: str) -> None:
    from bench.bot import Bot, origin_of, room_url

    bots: list[tuple[Any, Any]] = []  # (bot, channel)
    loop = asyncio.get_running_loop()

    async def join(spec: BotSpec) -> float | str:
        from bench.bot import join_over_websocket

        bot = Bot(
            spec.user,
            spec.tone,
            send=spec.tone is not None,
            decode=False,
            bursts=spec.bursts,
            probe_frequencies=spec.probe,
            thin=spec.thin,
        )
        try:
            channel, times = await join_over_websocket(
                bot,
                room_url(server, app_id, room, spec.token),
                seat_index=spec.seat,
                origin=origin_of(server),
            )
        except Exception as exc:
            await bot.close()
            return f"{type(exc).__name__}: {exc}"
        bots.append((bot, channel))
        return times.connected

    while True:
        command, payload = await loop.run_in_executor(None, conn.recv)
        if command == "join":
            specs, concurrency = payload
            conn.send(await _join_all(join, specs, concurrency))
        elif command == "snapshot":
            conn.send([_bot_snapshot(bot, channel) for bot, channel in bots])
        else:
            for bot, channel in bots:
                await channel.close()
                await bot.close()
            conn.send("stopped")
            return


async def _join_all(join: Any, specs: list[BotSpec], concurrency: int) -> list[float | str]:
    gate = asyncio.Semaphore(concurrency)

    async def one(spec: BotSpec) -> float | str:
        async with gate:
            return await join(spec)

    return list(await asyncio.gather(*(one(s) for s in specs)))


def _bot_snapshot(bot: Any, channel: Any) -> dict[str, Any]:
    from bench.bot import _amplitudes

    snapshot = {
        "user": bot.name,
        "packets": bot.tap.packets,
        "expected": bot.tap.expected,
        "closed": channel.closed_code,
    }
    if bot.tap.probe is not None:
        snapshot["latencies"] = [v for vs in bot.burst_latencies().values() for v in vs]
        audio = bot.spot_check()
        amplitudes = _amplitudes(audio, TONES, min(0.4, audio.size / 48000))
        snapshot["hears"] = sorted(f for f, a in amplitudes.items() if a >= 600)
    return snapshot


# -- coordinator ----------------------------------------------------------------------------


class BotProcesses:
    """`count` spawned processes running `target(pipe, *args)`, each with a pipe to it."""

    def __init__(self, count: int, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.context.SpawnProcess] = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=target, args=(theirs, *args), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def cpu_seconds(self) -> float:
        return sum(proc_cpu_seconds(p.pid) for p in self.processes if p.pid)

    def stop(self, timeout: float = 20.0) -> None:
        """Ask each process to close its bots ("stop"), then make sure it is gone."""
        for pipe in self.pipes:
            try:
                pipe.send(("stop", None))
                if pipe.poll(timeout):
                    pipe.recv()
            except (OSError, EOFError):
                pass
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()


class Workers(BotProcesses):
    """Bot processes whose bots join over the room socket (`worker_main`)."""

    def __init__(self, count: int, server: str, app_id: int, room: str) -> None:
        super().__init__(count, worker_main, server, app_id, room)

    def join(self, specs_per_worker: list[list[BotSpec]], concurrency: int) -> list[float | str]:
        for pipe, specs in zip(self.pipes, specs_per_worker, strict=True):
            pipe.send(("join", (specs, concurrency)))
        return [r for pipe in self.pipes for r in pipe.recv()]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(("snapshot", None))
        return {s["user"]: s for pipe in self.pipes for s in pipe.recv()}


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch_stats(server: str) -> dict[str, Any]:
    # No proxy, whatever the environment says: the server is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{server.rstrip('/')}/internal/media-stats/", timeout=60) as response:
        return json.load(response)


def room_of(stats: dict[str, Any]) -> dict[str, Any] | None:
    rooms = stats["hub"]["rooms"]
    return max(rooms, key=lambda r: r["peers"]) if rooms else None


@dataclass
class Window:
    """One measured step: what the server and the bots did over `seconds`."""

    speakers: int
    listeners: int
    seconds: float = 0.0
    server_cpu: float = 0.0  # % of one core
    media_cpu: float = 0.0  # of which the media worker process
    bots_cpu: float = 0.0
    rss_mb: float = 0.0
    media_rss_mb: float = 0.0  # of which the media worker process
    loss: float = 0.0
    listeners_ok: int = 0
    worst_loss: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    late_ticks: int = 0
    skipped_ticks: int = 0  # audio the mixer never made (it resynced)
    real_time: float = 0.0  # packets a listener got per 20 ms of the window: 1.0 = all
    dropped: int = 0
    tick_ms_mean: float = 0.0
    encodes_per_tick: float = 0.0


def measure(server: str, workers: Workers, speakers: int, listeners: int, seconds: float) -> Window:
    window = Window(speakers, listeners)
    first_stats, first_bots = fetch_stats(server), workers.snapshot()
    first_wall, first_worker_cpu = time.monotonic(), workers.cpu_seconds()
    latencies: list[dict[str, Any]] = []
    while time.monotonic() - first_wall < seconds:
        time.sleep(1.0)
        room = room_of(fetch_stats(server))
        if room is not None:
            latencies.append(room["mixer"]["sent_latency_ms"])
    last_stats, last_bots = fetch_stats(server), workers.snapshot()
    window.seconds = time.monotonic() - first_wall
    window.bots_cpu = 100 * (workers.cpu_seconds() - first_worker_cpu) / window.seconds
    _server_figures(window, first_stats, last_stats)
    _loss_figures(window, first_bots, last_bots)
    window.latency_ms = _mean_percentiles(latencies)
    return window


def _server_figures(window: Window, first: dict[str, Any], last: dict[str, Any]) -> None:
    # The server is daphne plus, by default, its media worker process.
    def processes(stats: dict[str, Any]) -> list[dict[str, Any]]:
        return [stats["process"], *([stats["media_process"]] if "media_process" in stats else [])]

    def cpu(stats: dict[str, Any]) -> float:
        return sum(p["cpu_user_s"] + p["cpu_system_s"] for p in processes(stats))

    def media_cpu(stats: dict[str, Any]) -> float:
        media = stats.get("media_process")
        return media["cpu_user_s"] + media["cpu_system_s"] if media else 0.0

    window.server_cpu = 100 * (cpu(last) - cpu(first)) / window.seconds
    window.media_cpu = 100 * (media_cpu(last) - media_cpu(first)) / window.seconds
    window.rss_mb = sum(p["rss_bytes"] for p in processes(last)) / 2**20
    window.media_rss_mb = last.get("media_process", {}).get("rss_bytes", 0) / 2**20
    before, after = room_of(first), room_of(last)
    if before is None or after is None:
        return
    ticks = max(1, after["mixer"]["ticks"] - before["mixer"]["ticks"])
    window.late_ticks = after["mixer"]["late_ticks"] - before["mixer"]["late_ticks"]
    window.skipped_ticks = after["mixer"].get("skipped_ticks", 0) - before["mixer"].get(
        "skipped_ticks", 0
    )
    window.dropped = after["tracks"]["dropped"] - before["tracks"]["dropped"]
    window.encodes_per_tick = (after["mixer"]["encodes"] - before["mixer"]["encodes"]) / ticks
    window.tick_ms_mean = after["mixer"]["tick_ms_mean"]


def _loss_figures(window: Window, first: dict[str, Any], last: dict[str, Any]) -> None:
    losses, received_total, expected_total, counted = [], 0, 0, 0
    for user, end in last.items():
        if not user.startswith("listener") or user not in first:
            continue
        counted += 1
        received = end["packets"] - first[user]["packets"]
        expected = max(received, end["expected"] - first[user]["expected"], 1)
        losses.append(1 - received / expected)
        received_total += received
        expected_total += expected
    if losses:
        # What a listener hears: packets per second of wall time against the 50 a second
        # of real time. A late mixer that runs slow shows here even without a gap.
        window.real_time = received_total / (counted * window.seconds * PACKETS_PER_SECOND)
        window.loss = 1 - received_total / max(expected_total, 1)
        window.listeners_ok = sum(loss < LOSS_TARGET for loss in losses)
        window.worst_loss = max(losses)


def _mean_percentiles(samples: list[dict[str, Any]]) -> dict[str, float]:
    """The stats endpoint keeps the last 2,000 sends: average its percentiles over the window."""
    result = {}
    for p in ("p50", "p95", "p99"):
        values = [s[p] for s in samples if s.get(p) is not None]
        if values:
            result[p] = statistics.fmean(values)
    return result


# -- the run --------------------------------------------------------------------------------


def create_room(source_dir: Path, app_id: int, room_id: str, seats: int) -> None:
    rows = [1] + [4] * -(-seats // 4)  # the host's seat, then rows of four
    code = (
        "from rooms.models import App; from rooms.services import room_create; "
        f"room_create(app=App.objects.get(app_id={app_id}), room_id={room_id!r}, "
        f"title='bench', seat_rows={rows!r})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=source_dir,
        check=True,
        env=os.environ,
    )


def spawn_server(
    source_dir: Path, var_dir: Path, cpus: set[int] | None = None
) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "LIVEAUDIO_ICE_LOOPBACK_ONLY": "1",
        "LIVEAUDIO_MEDIA_STATS": "1",
        "LIVEAUDIO_SQLITE_PATH": str(var_dir / "db.sqlite3"),
        "LIVEAUDIO_VAR_DIR": str(var_dir),
        "LIVEAUDIO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    os.environ.update({k: env[k] for k in ("LIVEAUDIO_SQLITE_PATH", "LIVEAUDIO_VAR_DIR")})
    for command in (["migrate", "-v0"], ["setup_demo"]):
        manage = [sys.executable, "manage.py", *command]
        subprocess.run(manage, cwd=source_dir, env=env, check=True, stdout=subprocess.DEVNULL)
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        [*daphne, "liveaudio.asgi:application"],
        cwd=source_dir,
        env=env,
        # daphne and the media worker it spawns stay on these CPUs (children inherit it).
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        stdout=subprocess.DEVNULL,
        stderr=open(var_dir / "daphne.log", "w"),  # noqa: SIM115 - lives as long as the server
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for_server(url)
    return server, url


def _wait_for_server(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fetch_stats(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def split(specs: list[T], parts: int) -> list[list[T]]:
    return [specs[i::parts] for i in range(parts)]


def run(args: argparse.Namespace, server: str) -> list[Window]:
    from bench.bot import mint_tokens

    steps = sorted({int(s) for s in args.steps.split(",")})
    room_id = args.room or f"bench{int(time.time())}"
    create_room(args.source_dir, args.app, room_id, args.speakers)
    run_id = room_id[-6:]
    speakers = [f"speaker{i}-{run_id}" for i in range(args.speakers)]
    listeners = [f"listener{i}-{run_id}" for i in range(max(steps))]
    tokens = dict(
        zip(
            speakers + listeners,
            mint_tokens(args.app, room_id, [(u, None) for u in speakers + listeners]),
            strict=True,
        )
    )
    print(f"room {room_id} on {server}; server pid {fetch_stats(server)['process']['pid']}")
    # Speakers get a bot process of their own: they stand for browsers, whose packets leave
    # on time; sharing a process with hundreds of listener bots made them send in bursts,
    # and the server's playout buffer then (rightly) waited longer for everyone.
    workers = Workers(1 + args.workers, server, args.app, room_id)
    windows: list[Window] = []
    joins: list[float] = []
    failures: list[str] = []
    try:
        windows.append(_report(measure(server, workers, 0, 0, args.step_seconds)))
        speaker_specs = [
            BotSpec(u, tokens[u], seat=i + 1, tone=TONES[i % len(TONES)], bursts=i == 0)
            for i, u in enumerate(speakers)
        ]
        no_listeners: list[list[BotSpec]] = [[] for _ in range(args.workers)]
        _collect(workers.join([speaker_specs, *no_listeners], 4), joins, failures)
        time.sleep(args.settle)
        joined = 0
        for step in steps:
            specs = [
                BotSpec(
                    u,
                    tokens[u],
                    probe=(TONES[0],) if i < args.probes else (),
                    thin=args.thin and i >= args.probes,
                )
                for i, u in enumerate(listeners[joined:step], start=joined)
            ]
            if specs:
                per_worker = [[], *split(specs, args.workers)]
                _collect(workers.join(per_worker, args.concurrency), joins, failures)
                joined = step
                time.sleep(args.settle)
            window = measure(server, workers, args.speakers, joined, args.step_seconds)
            windows.append(_report(window))
        _print_probes(workers.snapshot())
    finally:
        workers.stop()
    _print_summary(args, windows, joins, failures)
    return windows


def _collect(results: list[float | str], joins: list[float], failures: list[str]) -> None:
    for result in results:
        if isinstance(result, float):
            joins.append(result)
        else:
            failures.append(result)


def _report(w: Window) -> Window:
    latency = " ".join(f"{k}={v:.1f}" for k, v in w.latency_ms.items()) or "-"
    print(
        f"S={w.speakers:<2} L={w.listeners:<4} server_cpu={w.server_cpu:5.1f}% "
        f"(media {w.media_cpu:5.1f}%) "
        f"bots_cpu={w.bots_cpu:5.1f}% rss={w.rss_mb:6.1f}MB (media {w.media_rss_mb:6.1f}MB) "
        f"real_time={w.real_time:.1%} "
        f"loss={w.loss:.3%} "
        f"ok={w.listeners_ok}/{w.listeners} worst={w.worst_loss:.2%} "
        f"sent_latency_ms[{latency}] late_ticks={w.late_ticks} skipped={w.skipped_ticks} "
        f"dropped={w.dropped} "
        f"tick={w.tick_ms_mean:.2f}ms encodes/tick={w.encodes_per_tick:.1f}",
        flush=True,
    )
    return w


def _print_probes(snapshot: dict[str, dict[str, Any]]) -> None:
    for user, s in snapshot.items():
        if "latencies" in s:
            lat = s["latencies"][-20:]
            median = f"{1000 * float(np.median(lat)):.0f} ms" if lat else "-"
            print(f"probe {user}: hears {s['hears']} Hz, tone-burst end-to-end median {median}")


def _print_summary(
    args: argparse.Namespace, windows: list[Window], joins: list[float], failures: list[str]
) -> None:
    base, with_speakers = windows[0], windows[1]
    steps = windows[1:]
    per_speaker = (with_speakers.server_cpu - base.server_cpu) / max(args.speakers, 1)
    xs = [w.listeners for w in steps]
    per_listener = float(np.polyfit(xs, [w.server_cpu for w in steps], 1)[0]) if len(xs) > 1 else 0
    top = steps[-1]
    peers = top.speakers + top.listeners
    memory = (top.rss_mb - base.rss_mb) / peers if peers else 0.0
    # Counted, not asked for: a listener whose join failed is not in the count.
    ok = [w.listeners_ok for w in steps if w.listeners and w.loss < LOSS_TARGET]
    print("\n== summary ==")
    print(f"listeners in one media process at < 0.5 % loss: {max(ok) if ok else 0}")
    for w in steps:
        if w.latency_ms:
            p = w.latency_ms
            print(
                f"server-added latency at L={w.listeners}: p50 {p.get('p50', 0):.1f} ms, "
                f"p95 {p.get('p95', 0):.1f} ms, p99 {p.get('p99', 0):.1f} ms"
            )
    print(f"server CPU per speaker: {per_speaker:.2f} % of a core")
    print(f"server CPU per listener: {per_listener:.3f} % of a core (slope over L)")
    print(f"server memory per peer: {memory:.2f} MB (RSS delta / {peers} peers)")
    if len(steps) > 1 and steps[-1].listeners > steps[0].listeners:
        # Between the listener steps (start-up and first-use costs left out), by process.
        first, added = steps[0], steps[-1].listeners - steps[0].listeners
        media = (top.media_rss_mb - first.media_rss_mb) / added
        daphne = (top.rss_mb - top.media_rss_mb - first.rss_mb + first.media_rss_mb) / added
        print(
            f"memory per added listener (L={first.listeners} -> {top.listeners}): "
            f"daphne {daphne * 1024:.0f} KB, media worker {media * 1024:.0f} KB"
        )
    if joins:
        q = np.percentile(joins, [50, 95])
        print(
            f"join time (socket open -> connected): p50 {q[0] * 1000:.0f} ms, "
            f"p95 {q[1] * 1000:.0f} ms over {len(joins)} joins"
        )
    if failures:
        print(f"{len(failures)} joins failed, e.g. {failures[:3]}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="liveaudio room load benchmark")
    parser.add_argument("--server", default="http://127.0.0.1:8100")
    parser.add_argument("--spawn-server", action="store_true")
    parser.add_argument("--source-dir", type=Path, default=REPO, help="where manage.py is")
    parser.add_argument("--var-dir", type=Path, default=Path("/tmp/liveaudio-bench"))
    parser.add_argument("--app", type=int, default=1234567)
    parser.add_argument("--room", default=None, help="default: a fresh room per run")
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--steps", default="0,50,100,200,300", help="listener counts")
    parser.add_argument("--step-seconds", type=float, default=12.0)
    parser.add_argument("--settle", type=float, default=3.0, help="pause after joins")
    parser.add_argument(
        "--workers", type=int, default=2, help="listener bot processes (speakers get one more)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="joins at once per worker")
    parser.add_argument("--probes", type=int, default=2, help="listeners that decode")
    parser.add_argument(
        "--thin", action="store_true", help="the other listeners are thin bots (bench.bot)"
    )
    parser.add_argument(
        "--server-cpus",
        type=_cpus,
        default=None,
        help="e.g. 0: the spawned server (and its media worker) on these CPUs only",
    )
    parser.add_argument(
        "--bot-cpus", type=_cpus, default=None, help="e.g. 1: this process and its bots"
    )
    return parser


def _cpus(text: str) -> set[int]:
    return {int(cpu) for cpu in text.split(",")}


def main() -> None:
    args = _parser().parse_args()
    server_process = None
    server = args.server
    if args.spawn_server:
        args.var_dir.mkdir(parents=True, exist_ok=True)
        server_process, server = spawn_server(args.source_dir, args.var_dir, args.server_cpus)
    if args.bot_cpus:
        os.sched_setaffinity(0, args.bot_cpus)  # before the bot processes start
    try:
        run(args, server)
    finally:
        if server_process is not None:
            server_process.terminate()
            try:
                server_process.wait(10)
            except subprocess.TimeoutExpired:
                server_process.kill()


if __name__ == "__main__":
    main()
