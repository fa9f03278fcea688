"""Where the media worker's memory per peer goes (issue 14, point 2).

    .venv/bin/python -m bench.peer_memory --steps 0,50,100,200

The real media worker process (`MediaProcess`) and real aiortc listener bots (recvonly,
counting packets, in `--workers` processes), as bench.media_load uses them. After each step
it prints the worker's RSS, its threads, its anonymous memory and the bytes per peer against
the step before; with `--trace`, the Python allocations that grew most since the first step
(tracemalloc, by file: the C libraries' own memory — OpenSSL, libopus, FFmpeg — shows in RSS
but not there).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tracemalloc
from typing import Any

from bench.media_load import ListenerProcesses, wait_connected
from bench.room_load import split
from rooms.media import MediaHub
from rooms.media.worker import MediaProcess, WorkerConfig

TOP = 12


def memory_report(hub: MediaHub) -> dict[str, Any]:
    """In the worker: RSS, anonymous memory and threads, from /proc."""
    gc.collect()
    fields: dict[str, Any] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                fields[name] = int(value.split()[0])
    fields["peers"] = sum(len(media.peers) for _, media in hub.room_media())
    return fields


def trace_start(hub: MediaHub) -> None:
    tracemalloc.start(8)
    trace_start.snapshot = tracemalloc.take_snapshot()  # type: ignore[attr-defined]


def trace_growth(hub: MediaHub) -> list[str]:
    """The Python allocations that grew most since `trace_start`, by file."""
    gc.collect()
    now = tracemalloc.take_snapshot()
    stats = now.compare_to(trace_start.snapshot, "filename")  # type: ignore[attr-defined]
    return [
        f"{s.size_diff / 1024:10.0f} KiB {s.count_diff:8d} blocks  {s.traceback}"
        for s in stats[:TOP]
    ]


async def run(args: argparse.Namespace) -> None:
    worker = MediaProcess(WorkerConfig(loopback_only=True, connect_timeout=60.0))
    bots = ListenerProcesses(args.workers, thin=args.thin)
    try:
        if args.trace:
            await worker.query(trace_start)
        joined, before = 0, None
        for step in sorted({int(s) for s in args.steps.split(",")}):
            names: list[tuple[str, float | None]] = [
                (f"listener{i}", None) for i in range(joined, step)
            ]
            for start in range(0, len(names), args.batch):
                await bots.join(worker, split(names[start : start + args.batch], args.workers))
            joined = step
            if joined:
                await wait_connected(worker, joined)
            await asyncio.sleep(args.settle)
            now = await worker.query(memory_report)
            line = (
                f"peers={now['peers']:<4} rss={now['VmRSS'] / 1024:7.1f} MB "
                f"anon={now['RssAnon'] / 1024:7.1f} MB threads={now['Threads']:<4}"
            )
            if before is not None and now["peers"] > before["peers"]:
                peers = now["peers"] - before["peers"]
                line += (
                    f" per peer: rss {(now['VmRSS'] - before['VmRSS']) / peers:6.0f} KB,"
                    f" anon {(now['RssAnon'] - before['RssAnon']) / peers:6.0f} KB,"
                    f" threads {(now['Threads'] - before['Threads']) / peers:.2f}"
                )
            print(line, flush=True)
            before = now
        if args.trace:
            print("\n== Python allocations grown since the start (tracemalloc, by file) ==")
            for row in await worker.query(trace_growth):
                print(row)
    finally:
        bots.stop()
        await worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="0,50,100,200", help="listener counts")
    parser.add_argument("--workers", type=int, default=2, help="listener bot processes")
    parser.add_argument("--batch", type=int, default=25, help="listeners joined at once")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the worker")
    parser.add_argument("--thin", action="store_true", help="thin listener bots (bench.bot)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveaudio.settings")
    main()
