"""Media workers of the scale-out mode as real processes, on the machine's Redis, for tests
(a plain module: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from rooms.media.cluster import Registry
from rooms.media.node import channel_layer
from rooms.media.remote import RemoteMedia

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("LIVEAUDIO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Cluster:
    """Media workers (`python -m rooms.media.node`) under a prefix of their own, so tests
    share the machine's Redis with nothing else; `close()` stops them and removes the keys."""

    def __init__(self, url: str = REDIS_URL, connect_timeout: float = 10.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.prefix = f"liveaudio-test-{uuid.uuid4().hex[:10]}"
        self.workers: dict[str, subprocess.Popen] = {}
        self.fronts: list[RemoteMedia] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LIVEAUDIO_REDIS_URL": self.url,
            "LIVEAUDIO_REDIS_PREFIX": self.prefix,
            "LIVEAUDIO_ICE_LOOPBACK_ONLY": "1",
            "LIVEAUDIO_MEDIA_CONNECT_TIMEOUT": str(self.connect_timeout),
        }

    def start(self, role: str, name: str, argv_prefix: tuple[str, ...] = ()) -> None:
        argv = [*argv_prefix, sys.executable, "-m", "rooms.media.node", "--role", role]
        self.workers[name] = subprocess.Popen(
            [*argv, "--name", name], cwd=ROOT, env=self.env(), stdin=subprocess.DEVNULL
        )

    def kill(self, name: str) -> None:
        """As a crash: no goodbye, no withdrawal from the registry."""
        process = self.workers.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def registry(self) -> Registry:
        return Registry(self.url, self.prefix)

    def front(self) -> RemoteMedia:
        """A daphne process's media front end (any number may share the workers)."""
        front = RemoteMedia(self.registry(), channel_layer(self.url, self.prefix))
        self.fronts.append(front)
        return front

    async def wait_for_workers(self, names: set[str], timeout: float = 60.0) -> None:
        registry = self.registry()
        try:
            async with asyncio.timeout(timeout):
                while {w.name for w in await registry.workers()} < names:
                    for name, process in self.workers.items():
                        if process.poll() is not None:
                            code = process.returncode
                            raise AssertionError(f"media worker {name} exited: {code}")
                    await asyncio.sleep(0.1)
        finally:
            await registry.close()

    async def close(self) -> None:
        for front in self.fronts:
            await front.close()
        for process in self.workers.values():
            process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers.clear()
        client = redis.Redis.from_url(self.url)
        keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
