"""The media relay tier on more than one machine (issue 14, point 8): hosts as network
namespaces (tests/netns.py), every media path on the hosts' own 10.77.0.x addresses.

    host A 10.77.0.11   daphne (scale-out, shared media workers), the mixer m1, the bots
    host B 10.77.0.12   relay r1
    host C 10.77.0.13   relay r2

A speaker on host A is heard by listeners whose peers are on the relays of B and C; when
host B dies, its listeners are told (rtc.closed, "worker_lost"), offer again, land on C's
relay and hear the speaker again. The bots are processes in host A (tests/netns_bot.py):
the machine's own namespace, where this test runs, has no route to the hosts.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from rooms.models import App
from rooms.tokens import token_mint
from tests import netns
from tests.live_clients import postgres_database
from tests.netns import Hosts
from tests.servers import manage

netns_hosts = netns.netns_hosts  # a fixture, taken in by assignment (see test_netns_harness)

ROOT = Path(__file__).resolve().parents[1]
BOT = str(ROOT / "tests" / "netns_bot.py")
REDIS = "redis://127.0.0.1:6379/0"  # the machine's: the hosts reach it through the hub
DEMO_APP, DEMO_ROOM = 1234567, "demo"
PORT = 8000  # host A's own: nothing else listens in its namespace
A_TONE = 440.0
TIMEOUT = 30.0
RECOVERY_LIMIT = 15.0  # asserted; the target, printed, is 3 s


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def prefix() -> Iterator[str]:
    """The Redis prefix of this test's workers and channel layer; its keys go afterwards
    (requested before `netns_hosts`, so the hosts' processes are dead by then)."""
    prefix = f"liveaudio-netns-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class BotProcess:
    """A tests/netns_bot.py in a host; a thread keeps the JSON lines it prints."""

    def __init__(self, host: netns.Host, name: str, argv: list[str], env: dict, log: Path):
        self.name = name
        self.log = log
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        with log.open("w") as stderr:
            self.process = host.popen(
                [sys.executable, BOT, "--name", name, *argv],
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self._reader = threading.Thread(target=self._read, name=f"bot-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self.events.append({"event": "exited", "t": time.monotonic()})
            self._changed.notify_all()

    def go(self) -> None:
        """Let it offer (it joined the room's socket and waits for this line)."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def wait_for(
        self, what: str, found: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """The first event (in the order printed) for which `found` is true."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for event in self.events[seen:]:
                    if event["event"] in ("error", "exited"):
                        raise AssertionError(f"bot {self.name} {event}:\n{self.stderr()}")
                    if found(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = self.events[-5:]
                    raise AssertionError(f"bot {self.name}: no {what} in {timeout} s; {tail}")
                self._changed.wait(left)

    def heard(self, after: float = 0.0, offer: int = 1, timeout: float = TIMEOUT) -> float:
        """When its peer (the `offer`-th or a later one) first heard the speaker after
        `after`."""
        event = self.wait_for(
            f"{A_TONE} Hz heard (offer {offer}+)",
            lambda e: (
                e["event"] == "hears"
                and e["t"] > after
                and e["offer"] >= offer
                and e["hears"] == [A_TONE]
            ),
            timeout,
        )
        return event["t"]

    def stderr(self) -> str:
        return self.log.read_text()[-3000:]

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # its end: it leaves the room and exits
        if self.process.poll() is None:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)  # the rest of its output read
        self.process.stdout.close()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Polls what only Redis or a port can tell (placement, a server up): no notification."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


SERVING = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.1)
"""


def test_a_speaker_is_heard_through_relays_on_two_hosts_and_again_when_one_dies(
    database: str, prefix: str, netns_hosts: Hosts, tmp_path: Path
) -> None:
    a, b, c = netns_hosts
    store = redis.Redis.from_url(REDIS, decode_responses=True)
    media = f"{prefix}:media"
    common = {
        "LIVEAUDIO_REDIS_URL": netns_hosts.redis_url,
        "LIVEAUDIO_REDIS_PREFIX": prefix,
        # On the hosts' own addresses: a loopback-only ICE (the test run's) would never
        # connect a peer in host A to a relay in host B.
        "LIVEAUDIO_ICE_LOOPBACK_ONLY": "0",
        "LIVEAUDIO_MEDIA_CONNECT_TIMEOUT": "10",
        "PYTHONUNBUFFERED": "1",
    }
    server_env = {
        **common,
        "DJANGO_SETTINGS_MODULE": "liveaudio.settings",
        "LIVEAUDIO_DATABASE_URL": netns_hosts.postgres_url(database.rsplit("/", 1)[1]),
        "LIVEAUDIO_MEDIA_WORKERS": "shared",
        "LIVEAUDIO_ALLOWED_HOSTS": f"{a.address},127.0.0.1",
        "LIVEAUDIO_VAR_DIR": str(tmp_path),
        "LIVEAUDIO_SQLITE_PATH": str(tmp_path / "unused.sqlite3"),
        "LIVEAUDIO_SEAT_GRACE_SECONDS": "2",
    }
    logs: dict[str, Path] = {}

    def start(host: netns.Host, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        logs[name] = tmp_path / f"{name}.log"
        with logs[name].open("w") as out:  # the child has its own copy of the descriptor
            return host.popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def node(host: netns.Host, role: str, name: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "rooms.media.node", "--role", role, "--name", name]
        return start(host, name, [*argv, "--host", host.address], common)

    base = f"http://{a.address}:{PORT}"
    daphne = [sys.executable, "-m", "daphne", "-b", a.address, "-p", str(PORT)]
    processes = {
        "daphne": start(a, "daphne", [*daphne, "liveaudio.asgi:application"], server_env),
        "m1": node(a, "mixer", "m1"),
        "r1": node(b, "relay", "r1"),
        "r2": node(c, "relay", "r2"),
    }
    bots: list[BotProcess] = []
    b_killed = False  # from then on, r1's end is the test's doing

    def logged(name: str) -> str:
        return f"{name}:\n{logs[name].read_text()[-3000:]}"

    def all_alive() -> bool:
        for name, process in processes.items():
            if process.poll() is not None and not (name == "r1" and b_killed):
                raise AssertionError(f"{name} exited ({process.returncode}); {logged(name)}")
        return True

    def workers() -> set[str]:
        all_alive()
        names = list(store.hkeys(f"{media}:workers"))
        beats = store.mget([f"{media}:alive:{name}" for name in names]) if names else []
        return {name for name, beat in zip(names, beats, strict=True) if beat}

    def peers() -> dict[str, str]:
        all_alive()
        keys = list(store.scan_iter(match=f"{media}:peers:*"))
        assert len(keys) <= 1, keys  # the one room of this test
        return store.hgetall(keys[0]) if keys else {}

    try:
        # The demo app and room, from this namespace on the machine's 127.0.0.1 (the copy
        # postgres_database made is migrated), while the hosts' processes start.
        manage(
            {**server_env, "LIVEAUDIO_DATABASE_URL": database},
            "setup_demo",
            "--base-url",
            base,
        )
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT app_sign FROM rooms_app WHERE app_id = %s", [DEMO_APP])
            app = App(app_id=DEMO_APP, app_sign=row.fetchone()[0])
        up = a.run([sys.executable, "-c", SERVING, a.address, str(PORT), str(TIMEOUT)], timeout=40)
        assert up.returncode == 0 and all_alive(), logged("daphne")
        wait_until(lambda: workers() >= {"m1", "r1", "r2"}, "m1, r1 and r2 in the registry")

        def bot(name: str, *argv: str) -> BotProcess:
            token = token_mint(app=app, room_id=DEMO_ROOM, user_id=name, user_name=name)
            url = f"ws://{a.address}:{PORT}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/"
            env = {**common, "LIVEAUDIO_BOT_TOKEN": token}
            process = BotProcess(
                a, name, ["--url", url, "--origin", base, *argv], env, tmp_path / f"{name}.log"
            )
            bots.append(process)
            return process

        # All started at once (each costs an interpreter's start-up), let in one by one.
        ada = bot("ada", "--tone", str(A_TONE), "--seat", "1")
        listeners = [bot(f"l{i}") for i in range(1, 4)]
        for person in [ada, *listeners]:
            person.wait_for("joined", lambda e: e["event"] == "joined")

        ada.go()
        ada.wait_for("microphone on", lambda e: e["event"] == "mic_on")
        assert peers()["ada"] == "m1"
        # One at a time, each placed before the next offers: the least-loaded relay then
        # takes each in turn, and both hosts' relays carry listeners.
        for person in listeners:
            person.go()
            wait_until(lambda p=person: peers().get(p.name), f"{person.name} placed")
        placed = peers()
        on_relays = {person.name: placed[person.name] for person in listeners}
        assert set(on_relays.values()) == {"r1", "r2"}, placed

        # (1) Host A's speaker, through the relays of hosts B and C.
        for person in listeners:
            person.heard()

        # (2) Host B dies with its relay: its listeners offer again and land on C's.
        lost = [person for person in listeners if on_relays[person.name] == "r1"]
        kept = [person for person in listeners if on_relays[person.name] == "r2"]
        killed_at = time.monotonic()
        b_killed = True
        b.kill()
        figures = []
        for person in lost:
            closed = person.wait_for(
                "rtc.closed",
                lambda e: e["event"] == "closed" and e["t"] > killed_at,
            )
            assert closed["reason"] == "worker_lost", closed
            again = person.heard(after=closed["t"], offer=closed["offer"] + 1)
            figures.append((person.name, closed["t"] - killed_at, again - killed_at))
        for name, told, heard_again in figures:
            print(
                f"\n{name}: host B killed -> rtc.closed {told:.2f} s, "
                f"-> heard again through r2 {heard_again:.2f} s (target 3 s)"
            )
        assert max(heard_again for *_, heard_again in figures) < RECOVERY_LIMIT, figures
        placed = peers()
        assert {placed[person.name] for person in listeners} == {"r2"}, placed
        assert placed["ada"] == "m1"
        for person in kept:  # never moved, and heard on
            assert not [e for e in person.events if e["event"] == "closed"], person.events[-5:]
            person.heard(after=time.monotonic())
    finally:
        for person in bots:
            person.stop()
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        store.close()
