"""Test "hosts" as Linux network namespaces, for tests of more than one machine (a relay tier).

Layout, all of it in namespaces this test run creates and deletes; the machine's own network
namespace gets no interface, address or route, and no service of the machine is reconfigured:

    lanet<pid>-hub   bridge br0, 10.77.0.1/24; one veth port per host (h1, h2, ...)
    lanet<pid>-h1    eth0 10.77.0.11/24, lo   (no default route: nothing leaves the bridge)
    lanet<pid>-h2    eth0 10.77.0.12/24, lo

PostgreSQL and Redis listen on the machine's 127.0.0.1, which a host cannot see (its 127.0.0.1
is its own loopback). A forwarder thread of this process accepts on sockets it made inside the
hub (10.77.0.1:5432 and :6379) and connects out from the machine's namespace, so hosts reach
the real services at the hub's address and nothing of the machine is exposed to them.

Names carry this process's pid, so concurrent runs never collide; namespaces left by a run
that died (its pid gone) are deleted when the next one starts. Needs root.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

PREFIX = "lanet"
SUBNET = "10.77.0"
HUB_ADDRESS = f"{SUBNET}.1"
REDIS = ("127.0.0.1", 6379)
POSTGRES = ("127.0.0.1", 5432)
_NETNS_NAME = re.compile(rf"^{PREFIX}(\d+)-(hub|h\d+)$")
_CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class ServiceAddress:
    """Where a host finds a service: the hub's address and the forwarded port."""

    host: str
    port: int


def ip(*args: str) -> str:
    """Run iproute2 and return its output; a failure raises with ip's own message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll a condition the kernel gives no notification for (a namespace's process list)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def netns_pids(name: str) -> list[int]:
    """The processes living in a namespace (empty once it is gone)."""
    try:
        return [int(pid) for pid in ip("netns", "pids", name).split()]
    except RuntimeError:
        return []


def kill_netns_processes(name: str) -> None:
    """SIGKILL everything in a namespace: an outage, not a shutdown. Never this process."""
    for pid in netns_pids(name):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def delete_netns(name: str) -> None:
    """Kill a namespace's processes, then delete it with every interface in it."""
    kill_netns_processes(name)
    with contextlib.suppress(RuntimeError):
        ip("netns", "del", name)


def sweep_stale() -> None:
    """Delete namespaces of ours whose run is gone (SIGKILLed pytest, power cut, ...)."""
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _NETNS_NAME.match(name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            delete_netns(name)


def socket_in_netns(netns: str, address: tuple[str, int]) -> socket.socket:
    """A listening TCP socket that belongs to another namespace.

    A socket keeps the namespace it was made in, so a short-lived thread joins the namespace
    (setns only moves the calling thread), makes the socket and ends; the rest of the process
    never leaves the machine's namespace. Python 3.11 has no os.setns, hence ctypes."""
    made: concurrent.futures.Future[socket.socket] = concurrent.futures.Future()

    def inside() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}") as target:
                if libc.setns(target.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            made.set_result(socket.create_server(address))
        except BaseException as error:  # handed to the caller, who raises it
            made.set_exception(error)

    thread = threading.Thread(target=inside, name=f"setns-{netns}")
    thread.start()
    thread.join()
    return made.result()


class Forwarder:
    """TCP forwarding from sockets in the hub to the machine's loopback services.

    An asyncio loop on a thread of its own, owned by Hosts: started before any host process
    runs, stopped (every connection closed) before the hub is deleted."""

    def __init__(self, netns: str, routes: Sequence[tuple[tuple[str, int], tuple[str, int]]]):
        self.netns = netns
        self.routes = routes  # (where to listen in netns, where to connect from here)
        self._listening: list[tuple[socket.socket, tuple[str, int]]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._relays: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        for listen, upstream in self.routes:
            self._listening.append((socket_in_netns(self.netns, listen), upstream))
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="fwd")
        self._thread.start()
        self._ready.result(timeout=5)

    def stop(self) -> None:
        """Close every socket: one left open would keep the deleted hub alive, unseen."""
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=5)
        for listening, _ in self._listening:
            listening.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            servers = [
                await asyncio.start_server(self._relay_to(upstream), sock=listening)
                for listening, upstream in self._listening
            ]
        except BaseException as error:
            self._ready.set_exception(error)
            return
        self._ready.set_result(None)
        await self._stop.wait()
        for server in servers:
            server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    def _relay_to(self, upstream: tuple[str, int]) -> Callable[..., Any]:
        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._relays.add(task)
            try:
                await _relay(reader, writer, upstream)
            finally:
                self._relays.discard(task)

        return relay


async def _relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: tuple[str, int]
) -> None:
    """One forwarded connection; a service that is down looks like a reset to the client."""
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        writer.close()
        return
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_pipe(reader, up_writer))
            group.create_task(_pipe(up_reader, writer))
    except* OSError:
        pass  # either side reset: the other is closed below, as a real connection would be
    finally:
        writer.close()
        up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; the end of it is passed on as a half-close, not a close."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


class Host:
    """One test "machine": a namespace on the hub's bridge with an address of its own."""

    def __init__(self, name: str, link: str, address: str, hub: str) -> None:
        self.name = name  # the namespace, for `ip netns exec`
        self.link = link  # its veth port on the hub's bridge
        self.address = address
        self.hub = hub
        self.processes: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address}>"

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(
        self, argv: Sequence[str], env: dict[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start a process in this host. `env` is added to the test's own environment (a
        process needs PATH and the like as much as the variables a test sets)."""
        process = subprocess.Popen(self.command(argv), env={**os.environ, **(env or {})}, **kwargs)
        self.processes.append(process)
        return process

    def run(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float = 30,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to its end in this host; output captured as text unless told."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(
            self.command(argv), env={**os.environ, **(env or {})}, timeout=timeout, **kwargs
        )

    def pids(self) -> list[int]:
        return netns_pids(self.name)

    def kill(self) -> None:
        """The host dies: SIGKILL every process in it (children and daemons too).

        Our own processes are killed by handle as well: one just started may still be `ip`
        on its way into the namespace, invisible to `ip netns pids`. The sweep repeats until
        the namespace is empty, so a process forked meanwhile dies too."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in self.processes:
            process.wait(timeout=5)

        def emptied() -> bool:
            kill_netns_processes(self.name)
            return not self.pids()

        wait_until(emptied, f"the processes of {self.name} to die")

    def cut(self) -> None:
        """Unplug the host's cable: its processes live on but reach no one, nor are reached."""
        ip("-n", self.hub, "link", "set", self.link, "down")

    def reconnect(self) -> None:
        ip("-n", self.hub, "link", "set", self.link, "up")


class Hosts:
    """`count` hosts on one bridge, with PostgreSQL and Redis forwarded to the hub's address.

    A context manager; closing it kills every process in the hosts, stops the forwarder and
    deletes the namespaces (and with them every veth and the bridge), also after a failure
    half-way through start()."""

    def __init__(self, count: int = 3) -> None:
        if not 1 <= count <= 200:
            raise ValueError("between 1 and 200 hosts")
        run_id = f"{PREFIX}{os.getpid()}"
        self.hub = f"{run_id}-hub"
        self.address = HUB_ADDRESS
        self.hosts = [
            Host(f"{run_id}-h{i}", f"h{i}", f"{SUBNET}.{10 + i}", self.hub)
            for i in range(1, count + 1)
        ]
        self.redis = ServiceAddress(HUB_ADDRESS, REDIS[1])
        self.postgres = ServiceAddress(HUB_ADDRESS, POSTGRES[1])
        self._forwarder: Forwarder | None = None

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis.host}:{self.redis.port}/0"

    def postgres_url(self, dbname: str = "test", user: str = "postgres") -> str:
        """For LIVEAUDIO_DATABASE_URL; the machine's PostgreSQL trusts loopback, and forwarded
        connections arrive from its 127.0.0.1."""
        return f"postgres://{user}@{self.postgres.host}:{self.postgres.port}/{dbname}"

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __enter__(self) -> Hosts:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        sweep_stale()
        self._make_hub()
        for host in self.hosts:
            self._plug_in(host)
        self._forwarder = Forwarder(
            self.hub,
            [
                ((HUB_ADDRESS, self.redis.port), REDIS),
                ((HUB_ADDRESS, self.postgres.port), POSTGRES),
            ],
        )
        self._forwarder.start()

    def close(self) -> None:
        """Best effort on every step, so one failure leaves nothing else behind."""
        for host in self.hosts:
            with contextlib.suppress(RuntimeError, TimeoutError, subprocess.TimeoutExpired):
                host.kill()
        if self._forwarder:
            self._forwarder.stop()
        for name in [host.name for host in self.hosts] + [self.hub]:
            delete_netns(name)

    def _make_hub(self) -> None:
        ip("netns", "add", self.hub)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "addr", "add", f"{HUB_ADDRESS}/24", "dev", "br0")
        ip("-n", self.hub, "link", "set", "br0", "up")

    def _plug_in(self, host: Host) -> None:
        """A veth pair made with its ends already in place: never in the machine's namespace,
        where network managers might take an interest in a new link."""
        ip("netns", "add", host.name)
        ip(
            "link", "add", host.link, "netns", self.hub, "type", "veth",
            "peer", "name", "eth0", "netns", host.name,
        )  # fmt: skip
        ip("-n", self.hub, "link", "set", host.link, "master", "br0", "up")
        ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.name, "link", "set", "eth0", "up")
        ip("-n", host.name, "link", "set", "lo", "up")


@pytest.fixture
def netns_hosts(request: pytest.FixtureRequest) -> Iterator[Hosts]:
    """Three hosts (or `@pytest.mark.parametrize("netns_hosts", [2], indirect=True)`), fresh
    for each test since a test may kill or unplug them. For hosts shared by a module, write a
    module-scoped fixture that does `with Hosts(count=...) as hosts: yield hosts`."""
    with Hosts(count=getattr(request, "param", 3)) as hosts:
        yield hosts
