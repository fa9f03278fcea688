"""daphne with a memory probe, for bench/soak.py: `python -m bench.server_probe <daphne args>`.

The real server (daphne's own command line, the same ASGI application), plus two signal
handlers that write what the process holds to `$LIVEAUDIO_BENCH_PROBE_DIR`:

- SIGUSR1 appends one JSON line to `probe.jsonl`: RSS; glibc's `mallinfo2` (bytes in use,
  free but kept, mmapped); the channel layer's channels, queued messages and groups; daphne's
  connections and the bytes waiting in their Twisted write buffers; consumers' queued room
  updates; asyncio tasks; the most numerous object types; and, when tracemalloc is on
  (`LIVEAUDIO_BENCH_TRACEMALLOC=<frames>`), the top allocation sites and their growth since
  the first dump.
- SIGUSR2 calls `malloc_trim(0)` and appends the RSS before and after: memory that glibc
  holds free but had not given back shows up as the difference.

Bench code only: nothing in the server imports it, and without the signals it does nothing.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import gc
import json
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

_FIRST: tracemalloc.Snapshot | None = None
_LIBC = ctypes.CDLL("libc.so.6")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_LIBC.mallinfo2.restype = _MallInfo2


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _malloc() -> dict[str, float]:
    info = _LIBC.mallinfo2()
    mb = 2**20
    return {
        "heap_mb": info.arena / mb,  # from brk/arenas, in use or free
        "in_use_mb": info.uordblks / mb,
        "free_kept_mb": info.fordblks / mb,
        "mmapped_mb": info.hblkhd / mb,
    }


def _channel_layer() -> dict[str, Any]:
    from channels.layers import channel_layers

    layer = channel_layers.backends.get("default")
    if layer is None or not hasattr(layer, "channels"):
        return {}
    queued = [m for q in layer.channels.values() for _, m in list(q._queue)]
    text = {id(v): len(v) for m in queued for v in m.values() if isinstance(v, str)}
    members = {c for g in layer.groups.values() for c in g}
    now = time.time()
    # The fullest channels: how many messages, whether still in a group, oldest's age.
    fullest = sorted(layer.channels.items(), key=lambda item: -item[1].qsize())[:8]
    return {
        "fullest": [
            {
                "queued": q.qsize(),
                "in_group": name in members,
                "oldest_s": round(now - (q._queue[0][0] - layer.expiry), 1) if q.qsize() else 0,
                "types": sorted({m["type"] for _, m in q._queue}),
            }
            for name, q in fullest
        ],
        "not_in_a_group": sum(name not in members for name in layer.channels),
        "channels": len(layer.channels),
        "queued_messages": len(queued),
        "queued_max": max((q.qsize() for q in layer.channels.values()), default=0),
        "queued_distinct_text_mb": sum(text.values()) / 2**20,
        "groups": len(layer.groups),
        "group_members": sum(len(g) for g in layer.groups.values()),
    }


def _objects() -> tuple[dict[str, Any], list[tuple[str, int]]]:
    counts: collections.Counter[str] = collections.Counter()
    buffered = connections = updates = update_chars = consumers = 0
    for obj in gc.get_objects():
        kind = type(obj)
        counts[kind.__qualname__] += 1
        if kind.__name__ == "Server" and kind.__module__ == "daphne.server":
            connections += len(obj.connections)
        elif kind.__name__ == "RoomConsumer":
            consumers += 1
            pending = getattr(obj, "_updates", ())
            updates += len(pending)
            update_chars += sum(len(u.get("state_json", "")) for u in pending)
        elif kind.__name__ == "WebSocketServerProtocol" or kind.__name__ == "WebSocketProtocol":
            transport = getattr(obj, "transport", None)
            if transport is not None and hasattr(transport, "dataBuffer"):
                buffered += len(transport.dataBuffer) - transport.offset
                buffered += transport._tempDataLen
    sockets = {
        "daphne_connections": connections,
        "consumers_alive": consumers,
        "twisted_write_buffers_mb": buffered / 2**20,
        "consumer_queued_updates": updates,
        "consumer_queued_state_mb": update_chars / 2**20,
    }
    return sockets, counts.most_common(25)


def _stuck_consumers(layer_channels: dict[str, Any]) -> list[dict[str, Any]]:
    """Consumers whose channel holds >= 20 messages: who they are and where their task waits."""
    full = {name for name, q in layer_channels.items() if q.qsize() >= 20}
    if not full:
        return []
    consumers = {
        obj.channel_name: obj
        for obj in gc.get_objects()
        if type(obj).__name__ == "RoomConsumer" and getattr(obj, "channel_name", None) in full
    }
    found = []
    for task in asyncio.all_tasks(asyncio.get_running_loop()):
        chain, coro = [], task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                chain.append((frame.f_code.co_qualname, frame.f_lineno, frame.f_locals.get("self")))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        for name, consumer in consumers.items():
            if any(owner is consumer for _, _, owner in chain):
                found.append(
                    {
                        "channel": name,
                        "user_id": consumer.user_id,
                        "member": consumer.member is not None,
                        "waits_in": [f"{q}:{line}" for q, line, _ in chain][-8:],
                    }
                )
    return found


def _stuck_or_error() -> list[dict[str, Any]] | str:
    from channels.layers import channel_layers

    layer = channel_layers.backends.get("default")
    try:
        return _stuck_consumers(getattr(layer, "channels", {}))
    except Exception as exc:  # a probe must not take the server down
        return repr(exc)


def _tasks() -> int:
    try:
        return len(asyncio.all_tasks(asyncio.get_running_loop()))
    except RuntimeError:
        return -1


def _tracemalloc() -> dict[str, Any]:
    global _FIRST
    if not tracemalloc.is_tracing():
        return {}
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    traced, peak = tracemalloc.get_traced_memory()
    result: dict[str, Any] = {
        "traced_mb": traced / 2**20,
        "traced_peak_mb": peak / 2**20,
        "top": [_stat(s) for s in snapshot.statistics("traceback")[:12]],
    }
    if _FIRST is None:
        _FIRST = snapshot
    else:
        growth = snapshot.compare_to(_FIRST, "traceback")
        result["growth_since_first"] = [_stat(s) for s in growth[:12]]
    return result


def _stat(stat: Any) -> dict[str, Any]:
    frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback]
    entry = {"kb": round(stat.size / 1024, 1), "count": stat.count, "where": frames[-6:]}
    if hasattr(stat, "size_diff"):
        entry["kb_diff"] = round(stat.size_diff / 1024, 1)
        entry["count_diff"] = stat.count_diff
    return entry


def _write(record: dict[str, Any]) -> None:
    out = Path(os.environ.get("LIVEAUDIO_BENCH_PROBE_DIR", "."))
    with open(out / "probe.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def _dump(signum: int, frame: Any) -> None:
    started = time.monotonic()
    gc.collect()
    sockets, objects = _objects()
    record = {
        "at": time.time(),
        "kind": "dump",
        "rss_mb": rss_mb(),
        "malloc": _malloc(),
        "layer": _channel_layer(),
        "sockets": sockets,
        "asyncio_tasks": _tasks(),
        "stuck": _stuck_or_error(),
        "objects": objects,
        "tracemalloc": _tracemalloc(),
    }
    record["probe_seconds"] = time.monotonic() - started
    _write(record)


def _trim(signum: int, frame: Any) -> None:
    before, malloc_before = rss_mb(), _malloc()
    gc.collect()
    _LIBC.malloc_trim(0)
    _write(
        {
            "at": time.time(),
            "kind": "trim",
            "rss_before_mb": before,
            "rss_after_mb": rss_mb(),
            "malloc_before": malloc_before,
            "malloc_after": _malloc(),
        }
    )


def main() -> None:
    frames = int(os.environ.get("LIVEAUDIO_BENCH_TRACEMALLOC", "0"))
    if frames:
        tracemalloc.start(frames)
    signal.signal(signal.SIGUSR1, _dump)
    signal.signal(signal.SIGUSR2, _trim)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(sys.argv[1:])


if __name__ == "__main__":
    main()
