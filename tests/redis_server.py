"""A redis-server of the test's own, on a free loopback port: killed and restarted by fault
tests. Never the machine's shared Redis."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.servers import free_port


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        log = (self.workdir / f"redis-{self.port}.log").open("a")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.05)  # polling for the port, not waiting on behaviour

    def kill(self) -> None:
        """SIGKILL: an outage, not a shutdown."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False
