"""Soak and join-storm benchmarks: does the server's memory stay flat?

    .venv/bin/python -m bench.soak --spawn-server --var-dir /tmp/soak --clients 30 \
        --minutes 8 --server-cpus 0 --bot-cpus 1
    .venv/bin/python -m bench.soak --spawn-server --var-dir /tmp/storm --storm 200 \
        --server-cpus 0 --bot-cpus 1

Soak: `--clients` websocket clients (no media) join one room and, for `--minutes`, each
does one thing every 0.5-2.5 s: chat, take a free seat, leave it, switch the microphone,
leave the room (`room.leave`) and join again, or drop the socket and reconnect.
`--media-bots` speakers with a tone (bench/bot.py, real WebRTC) sit on seats, and one of
them leaves and rejoins every `--media-churn` seconds, so the media worker's peers come and
go too. Every `--sample-seconds` it prints the RSS of each server process (daphne and its
children: the media worker, multiprocessing's resource tracker) and at the end a
least-squares slope per process, over the whole run and over its second half (a warm-up
that levels off has a slope near zero there; a leak does not).

Storm: `--storm N` sockets join within `--storm-seconds`, stay `--hold` seconds, RSS sampled
every 0.5 s: the peak, what is left, and what each socket was sent.

`--spawn-server` runs daphne through bench/server_probe.py, which on SIGUSR1 writes what the
process holds (channel layer queues, Twisted write buffers, malloc's free memory,
tracemalloc's top sites with `--tracemalloc FRAMES`) to `<var-dir>/probe.jsonl`; `--probe`
sends that signal with every sample, `--trim` asks for a `malloc_trim(0)` at the end (the RSS
glibc gives back is memory that was free but kept). All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.room_load import _wait_for_server, create_room, fetch_stats

REPO = Path(__file__).resolve().parents[1]
SEATS = 8  # seats 1-8; seat 0 is the host's


# -- the server and its processes -----------------------------------------------------------


def spawn_server(
    *, source_dir: Path, var_dir: Path, cpus: set[int] | None, tracemalloc_frames: int
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
        # The soak's clients are one process: its flood guard is not what is measured.
        "LIVEAUDIO_SOCKET_MESSAGES_PER_10S": "1000",
        "LIVEAUDIO_BENCH_PROBE_DIR": str(var_dir),
        "LIVEAUDIO_BENCH_TRACEMALLOC": str(tracemalloc_frames),
    }
    os.environ.update({k: env[k] for k in ("LIVEAUDIO_SQLITE_PATH", "LIVEAUDIO_VAR_DIR")})
    for command in (["migrate", "-v0"], ["setup_demo"]):
        manage = [sys.executable, "manage.py", *command]
        subprocess.run(manage, cwd=source_dir, env=env, check=True, stdout=subprocess.DEVNULL)
    (var_dir / "probe.jsonl").unlink(missing_ok=True)
    daphne = [sys.executable, "-m", "bench.server_probe", "-b", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        [*daphne, "liveaudio.asgi:application"],
        cwd=source_dir,
        env=env,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        stdout=subprocess.DEVNULL,
        stderr=open(var_dir / "daphne.log", "w"),  # noqa: SIM115 - lives as long as the server
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for_server(url)
    return server, url


def process_tree(root: int) -> dict[str, int]:
    """The server's processes by role: daphne (`root`) and its children."""
    found = {"daphne": root}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != root:
            continue
        role = "tracker" if "resource_tracker" in cmdline else "media"
        found[role if role not in found else f"{role}-{entry.name}"] = int(entry.name)
    return found


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Samples:
    """RSS of each server process over time (minutes since the start)."""

    root: int
    started: float = field(default_factory=time.monotonic)
    minutes: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)

    def take(self) -> dict[str, float]:
        now = (time.monotonic() - self.started) / 60
        figures = {role: rss_mb(pid) for role, pid in process_tree(self.root).items()}
        figures["total"] = sum(figures.values())
        for role, mb in figures.items():
            # A process that appears late (the media worker starts on first use) is
            # padded with zeros before it, so every series has one value per sample.
            self.rss.setdefault(role, [0.0] * len(self.minutes)).append(mb)
        self.minutes.append(now)
        return figures

    def slope(self, role: str, *, second_half: bool = False) -> float:
        """MB per minute, least squares."""
        xs, ys = np.array(self.minutes), np.array(self.rss[role])
        if second_half:
            keep = xs >= xs[-1] / 2
            xs, ys = xs[keep], ys[keep]
        return float(np.polyfit(xs, ys, 1)[0]) if len(xs) > 1 else 0.0


def signal_server(pid: int, signum: int, var_dir: Path, *, wait: float = 30.0) -> dict | None:
    """Ask the probe for a record and return it (None if none came within `wait`)."""
    path = var_dir / "probe.jsonl"
    before = path.read_text().count("\n") if path.exists() else 0
    os.kill(pid, signum)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) > before:
            return json.loads(lines[before])
        time.sleep(0.2)
    return None


def _probe_line(record: dict | None) -> str:
    if record is None:
        return "probe: no answer"
    layer, sockets, malloc = record["layer"], record["sockets"], record["malloc"]
    line = (
        f"probe: rss {record['rss_mb']:.0f} MB, malloc in use {malloc['in_use_mb']:.0f} MB"
        f" / free kept {malloc['free_kept_mb']:.0f} MB / mmapped {malloc['mmapped_mb']:.0f} MB;"
        f" layer {layer.get('channels', 0)} channels, {layer.get('queued_messages', 0)}"
        f" queued (max {layer.get('queued_max', 0)}), {layer.get('group_members', 0)} in"
        f" {layer.get('groups', 0)} groups; {sockets['daphne_connections']} connections,"
        f" {sockets['consumers_alive']} consumers, write buffers"
        f" {sockets['twisted_write_buffers_mb']:.1f} MB, queued updates"
        f" {sockets['consumer_queued_updates']}; tasks {record['asyncio_tasks']}"
    )
    traced = record.get("tracemalloc") or {}
    if traced:
        line += f"; traced {traced['traced_mb']:.0f} MB (peak {traced['traced_peak_mb']:.0f})"
    return line


# -- soak clients ---------------------------------------------------------------------------


@dataclass
class Tally:
    actions: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    joins: int = 0
    failed_joins: int = 0
    frames: int = 0


class SoakClient:
    """One participant doing random things until the deadline."""

    def __init__(self, *, user: str, url: str, origin: str, tally: Tally, seed: int) -> None:
        self.user, self.url, self.origin, self.tally = user, url, origin, tally
        self.random = random.Random(seed)
        self.channel: Any = None

    async def run(self, deadline: float) -> None:
        from bench.bot import RoomError

        while time.monotonic() < deadline:
            if self.channel is None or self.channel.closed_code is not None:
                await self._join()
                continue
            await asyncio.sleep(self.random.uniform(0.5, 2.5))
            action = self.random.choices(
                ["chat", "seat.take", "seat.leave", "mic", "rejoin", "drop"],
                weights=[40, 15, 15, 10, 10, 10],
            )[0]
            try:
                await self._do(action)
                self.tally.actions[action] += 1
            except RoomError as exc:
                self.tally.refused[exc.code] += 1
            except (TimeoutError, OSError) as exc:
                self.tally.refused[type(exc).__name__] += 1
        await self._close()

    async def _join(self) -> None:
        from bench.bot import WebsocketChannel

        try:
            self.channel = await WebsocketChannel.connect(self.url, self.origin)
            await self.channel.request("ping")  # the welcome came before this reply
            self.tally.joins += 1
        except Exception:
            self.tally.failed_joins += 1
            await self._close()
            await asyncio.sleep(1.0)

    async def _do(self, action: str) -> None:
        channel = self.channel
        if action == "chat":
            text = " ".join(self.random.choices(["la", "lalala", "hello", "room"], k=12))
            await channel.request("message.send", message=f"{self.user}: {text}")
        elif action == "seat.take":
            await channel.request("seat.take", index=self.random.randint(1, SEATS))
        elif action == "seat.leave":
            await channel.request("seat.leave")
        elif action == "mic":
            await channel.request("microphone.turnOn", isOn=self.random.random() < 0.5)
        elif action == "rejoin":
            await channel.request("room.leave")
            await self._close()
        else:  # a dropped connection: no goodbye, the server finds out from the socket
            await self._close()

    async def _close(self) -> None:
        if self.channel is not None:
            self.tally.frames += self.channel.frames
            with contextlib.suppress(Exception):
                await self.channel.close()
            self.channel = None


class MediaSpeaker:
    """A speaker bot with a tone on a seat; `rejoin()` replaces its socket and peer."""

    def __init__(self, *, user: str, url: str, origin: str, seat: int, tone: float) -> None:
        self.user, self.url, self.origin, self.seat, self.tone = user, url, origin, seat, tone
        self.bot: Any = None
        self.channel: Any = None

    async def join(self) -> None:
        from bench.bot import Bot, join_over_websocket

        self.bot = Bot(self.user, self.tone, decode=False)
        self.channel, _ = await join_over_websocket(
            self.bot, self.url, seat_index=self.seat, origin=self.origin
        )

    async def leave(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self.bot is not None:
            await self.bot.close()
        self.bot = self.channel = None

    async def rejoin(self) -> None:
        await self.leave()
        await self.join()


async def _media_churn(speakers: list[MediaSpeaker], every: float, deadline: float) -> int:
    churned = 0
    while time.monotonic() + every < deadline and speakers:
        await asyncio.sleep(every)
        speaker = speakers[churned % len(speakers)]
        try:
            await speaker.rejoin()
            churned += 1
        except Exception as exc:
            print(f"media rejoin of {speaker.user} failed: {exc!r}", flush=True)
    return churned


# -- the runs -------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    server: str
    root: int  # daphne's pid
    room_id: str
    tokens: dict[str, str]

    def url(self, user: str) -> str:
        from bench.bot import room_url

        return room_url(self.server, self.args.app, self.room_id, self.tokens[user])

    @property
    def origin(self) -> str:
        from bench.bot import origin_of

        return origin_of(self.server)


def prepare(args: argparse.Namespace, server: str, users: list[str]) -> Run:
    from bench.bot import mint_tokens

    room_id = args.room or f"soak{int(time.time())}"
    create_room(args.source_dir, args.app, room_id, SEATS + args.media_bots)
    tokens = dict(
        zip(users, mint_tokens(args.app, room_id, [(u, None) for u in users]), strict=True)
    )
    root = fetch_stats(server)["process"]["pid"]
    print(f"room {room_id} on {server}; daphne pid {root}", flush=True)
    return Run(args, server, root, room_id, tokens)


async def soak(run: Run) -> Samples:
    args = run.args
    tally = Tally()
    samples = Samples(run.root)
    print(_sample_line(samples.take(), tally), flush=True)
    speakers = [
        MediaSpeaker(
            user=u, url=run.url(u), origin=run.origin, seat=SEATS + 1 + i, tone=440.0 + 110 * i
        )
        for i, u in enumerate(u for u in run.tokens if u.startswith("speaker"))
    ]
    for speaker in speakers:
        await speaker.join()
    deadline = time.monotonic() + 60 * args.minutes
    clients = [
        SoakClient(user=u, url=run.url(u), origin=run.origin, tally=tally, seed=i)
        for i, u in enumerate(u for u in run.tokens if u.startswith("client"))
    ]
    tasks = [asyncio.create_task(c.run(deadline)) for c in clients]
    churn = asyncio.create_task(_media_churn(speakers, args.media_churn, deadline))
    while time.monotonic() < deadline:
        await asyncio.sleep(min(args.sample_seconds, max(0.0, deadline - time.monotonic())))
        figures = samples.take()
        counts = (await asyncio.to_thread(fetch_stats, run.server))["hub"]["counts"]
        print(
            f"{_sample_line(figures, tally)} | peers {counts.get('peers', 0)}"
            f" level listeners {counts.get('level_listeners', 0)}",
            flush=True,
        )
        if args.probe:
            record = await asyncio.to_thread(signal_server, run.root, signal.SIGUSR1, args.var_dir)
            print("  " + _probe_line(record), flush=True)
    await asyncio.gather(*tasks)
    churned = await churn
    for speaker in speakers:
        await speaker.leave()
    print(
        f"\nactions {dict(tally.actions)}; refused {dict(tally.refused)}; joins {tally.joins}"
        f" (failed {tally.failed_joins}); media rejoins {churned}; frames received"
        f" {tally.frames}",
        flush=True,
    )
    return samples


def _sample_line(figures: dict[str, float], tally: Tally) -> str:
    processes = "  ".join(f"{role} {mb:6.1f}" for role, mb in figures.items())
    return (
        f"t={time.strftime('%H:%M:%S')} rss MB: {processes} | actions"
        f" {sum(tally.actions.values())} joins {tally.joins}"
    )


def print_slopes(samples: Samples) -> None:
    print("\n== RSS slope (least squares, MB per minute) ==")
    for role, values in samples.rss.items():
        print(
            f"{role:>8}: {values[0]:6.1f} -> {values[-1]:6.1f} MB (max {max(values):6.1f}),"
            f" slope {samples.slope(role):+.2f} MB/min over the run,"
            f" {samples.slope(role, second_half=True):+.2f} MB/min over its second half"
        )


class CountingSocket:
    """A `websockets` connection that counts the bytes of the frames it receives."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.received = 0

    @property
    def close_code(self) -> int | None:
        return self.socket.close_code

    async def send(self, text: str) -> None:
        await self.socket.send(text)

    async def close(self) -> None:
        await self.socket.close()

    async def __aiter__(self) -> Any:
        async for message in self.socket:
            self.received += len(message)
            yield message


async def counting_channel(url: str, origin: str) -> Any:
    import websockets

    from bench.bot import WebsocketChannel

    socket = await websockets.connect(
        url,
        additional_headers={"Origin": origin},
        max_size=None,
        open_timeout=30,
        ping_interval=None,
    )
    return WebsocketChannel(CountingSocket(socket))


async def storm(run: Run) -> Samples:
    """N sockets join within a few seconds and stay; RSS every 0.5 s."""
    args = run.args
    samples = Samples(run.root)
    base = samples.take()
    print(f"before: {_rss_line(base)}", flush=True)
    users = [u for u in run.tokens if u.startswith("client")]
    channels: list[Any] = []
    failures: list[str] = []
    started = time.monotonic()

    async def join(i: int, user: str) -> None:
        await asyncio.sleep(i * args.storm_seconds / len(users))
        try:
            channels.append(await counting_channel(run.url(user), run.origin))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    async def sample_until(done: asyncio.Event) -> None:
        while not done.is_set():
            samples.take()
            await asyncio.sleep(0.5)

    joined = asyncio.Event()
    sampler = asyncio.create_task(sample_until(joined))
    await asyncio.gather(*(join(i, u) for i, u in enumerate(users)))
    join_seconds = time.monotonic() - started
    hold_until = time.monotonic() + args.hold
    peak_record = None
    if args.probe:
        peak_record = await asyncio.to_thread(signal_server, run.root, signal.SIGUSR1, args.var_dir)
    while time.monotonic() < hold_until:
        await asyncio.sleep(0.5)
    joined.set()
    await sampler
    end = samples.take()
    frames = [c.frames for c in channels]
    print(
        f"{len(channels)} sockets open ({len(failures)} failed) {join_seconds:.1f} s after the"
        f" first; frames per socket: min {min(frames, default=0)}, median"
        f" {int(np.median(frames)) if frames else 0}, max {max(frames, default=0)}",
        flush=True,
    )
    received = [c.socket.received for c in channels]
    print(
        f"bytes received: {sum(received) / 2**20:.0f} MB in all, per socket median"
        f" {np.median(received) / 2**20 if received else 0:.1f} MB",
        flush=True,
    )
    if failures:
        print(f"failures, e.g. {failures[:3]}")
    peak = {role: max(values) for role, values in samples.rss.items()}
    print(f"peak:   {_rss_line(peak)}")
    print(f"after {args.hold:.0f} s: {_rss_line(end)}")
    if peak_record is not None:
        print(f"at the end of the joins: {_probe_line(peak_record)}")
    if args.probe:
        record = await asyncio.to_thread(signal_server, run.root, signal.SIGUSR1, args.var_dir)
        print(f"after the hold: {_probe_line(record)}")
    await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)
    return samples


def _rss_line(figures: dict[str, float]) -> str:
    return "  ".join(f"{role} {mb:.1f} MB" for role, mb in figures.items())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="liveaudio soak and join-storm benchmark")
    parser.add_argument("--server", default="http://127.0.0.1:8100")
    parser.add_argument("--spawn-server", action="store_true")
    parser.add_argument("--source-dir", type=Path, default=REPO, help="where manage.py is")
    parser.add_argument("--var-dir", type=Path, default=Path("/tmp/liveaudio-soak"))
    parser.add_argument("--app", type=int, default=1234567)
    parser.add_argument("--room", default=None, help="default: a fresh room per run")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--media-bots", type=int, default=0, help="speakers with a tone")
    parser.add_argument("--media-churn", type=float, default=60.0, help="s between rejoins")
    parser.add_argument("--storm", type=int, default=0, help="N joins at once instead")
    parser.add_argument("--storm-seconds", type=float, default=4.0)
    parser.add_argument("--hold", type=float, default=30.0, help="s the storm's sockets stay")
    parser.add_argument("--probe", action="store_true", help="a probe record per sample")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) at the end")
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames; 0 = off")
    parser.add_argument("--server-cpus", type=_cpus, default=None)
    parser.add_argument("--bot-cpus", type=_cpus, default=None)
    return parser


def _cpus(text: str) -> set[int]:
    return {int(cpu) for cpu in text.split(",")}


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if (args.probe or args.trim or args.tracemalloc) and not args.spawn_server:
        parser.error("--probe, --trim and --tracemalloc need --spawn-server (the probe runs in it)")
    server_process = None
    server = args.server
    if args.spawn_server:
        args.var_dir.mkdir(parents=True, exist_ok=True)
        server_process, server = spawn_server(
            source_dir=args.source_dir,
            var_dir=args.var_dir,
            cpus=args.server_cpus,
            tracemalloc_frames=args.tracemalloc,
        )
    if args.bot_cpus:
        os.sched_setaffinity(0, args.bot_cpus)
    count = args.storm or args.clients
    users = [f"client{i}" for i in range(count)]
    users += [f"speaker{i}" for i in range(0 if args.storm else args.media_bots)]
    try:
        run = prepare(args, server, users)
        samples = asyncio.run(storm(run) if args.storm else soak(run))
        if not args.storm:
            print_slopes(samples)
        if args.trim and server_process is not None:
            record = signal_server(run.root, signal.SIGUSR2, args.var_dir)
            if record is not None:
                print(
                    f"malloc_trim(0) in daphne: rss {record['rss_before_mb']:.0f} ->"
                    f" {record['rss_after_mb']:.0f} MB"
                )
    finally:
        if server_process is not None:
            server_process.terminate()
            try:
                server_process.wait(10)
            except subprocess.TimeoutExpired:
                server_process.kill()


if __name__ == "__main__":
    main()
