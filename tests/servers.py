"""The product's real server, daphne, in a subprocess: for browser and scale-out tests."""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
# One interpreter for both: Django's start-up is most of what each would cost alone.
SET_UP = (
    "from django.core.management import call_command; "
    "call_command('migrate', verbosity=0); "
    "call_command('setup_demo', base_url={base_url!r})"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@functools.cache
def migrated_sqlite() -> Path:
    """An SQLite database with every migration applied, made once per test run: a server's
    own database starts as a copy, and its migrate then has nothing left to do."""
    path = Path(tempfile.mkdtemp(prefix="liveaudio-template-")) / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "liveaudio.settings"}
    env.pop("LIVEAUDIO_DATABASE_URL", None)
    manage({**env, "LIVEAUDIO_SQLITE_PATH": str(path)}, "migrate", "-v0")
    return path


def query(server: LiveServer, sql: str, *args: object) -> list[tuple]:
    """Read the server's database (SQLite or PostgreSQL) as the server stored it."""
    url = server.env.get("LIVEAUDIO_DATABASE_URL")
    if url:
        with psycopg.connect(url) as conn:
            return conn.execute(sql.replace("?", "%s"), args).fetchall()
    with sqlite3.connect(Path(server.env["LIVEAUDIO_SQLITE_PATH"])) as conn:
        return conn.execute(sql, args).fetchall()


class LiveServer:
    """One daphne process. ``env`` overrides settings (database, channel layer...)."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LIVEAUDIO_VAR_DIR": str(workdir),
            "LIVEAUDIO_SQLITE_PATH": str(workdir / "db.sqlite3"),
            "LIVEAUDIO_ALLOWED_HOSTS": "127.0.0.1",
            "LIVEAUDIO_SEAT_GRACE_SECONDS": "2",
            "LIVEAUDIO_ICE_LOOPBACK_ONLY": "1",
            "DJANGO_SETTINGS_MODULE": "liveaudio.settings",
            **(env or {}),
        }
        self.log = workdir / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        return manage(self.env, *args)

    def app_sign(self, app_id: int = 1234567) -> str:
        """An app's appSign as the server stored it: what the integrator's backend holds.
        Read from the server's database (``manage.py shell`` would cost a Django start-up)."""
        [(sign,)] = query(self, "SELECT app_sign FROM rooms_app WHERE app_id = ?", app_id)
        return sign

    def create_room(self, room_id: str, app_id: int = 1234567) -> None:
        """A room, created as the integrator's backend does: through the HTTP API."""
        credentials = base64.b64encode(f"{app_id}:{self.app_sign(app_id)}".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/api/v1/rooms",
            data=json.dumps({"roomID": room_id}).encode(),
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201, response.read()

    def embed_url(
        self, room_id: str, user_id: str, *, role: str | None = None, app_id: int = 1234567
    ) -> str:
        """A participant's page: the embed view with a token minted as a backend would (with
        rooms.tokens, the Python helper, and the app's appSign)."""
        from rooms.models import App
        from rooms.tokens import token_mint

        app = App(app_id=app_id, app_sign=self.app_sign(app_id))
        token = token_mint(
            app=app, room_id=room_id, user_id=user_id, user_name=user_id.title(), role=role
        )
        url = f"{self.url}/embed/{app_id}/{room_id}/?token={token}"
        return url + (f"&role={role}" if role else "")

    def start(self, *, set_up: bool = True, also: str = "") -> None:
        """Start daphne and return once it answers. ``set_up`` (and ``also``, see there) runs
        while daphne starts: the two Django start-ups overlap (~1.2 s a server), and the
        server is asked nothing before the set-up is done."""
        self.launch(set_up=set_up, also=also)
        self.wait_until_serving()

    def launch(self, *, set_up: bool = True, also: str = "") -> None:
        """``start`` without the wait: a second server on the same database may start
        meanwhile (then ``wait_until_serving`` for each)."""
        if set_up:
            self.copy_migrated_sqlite()  # before daphne opens (and so makes) the file
        daphne = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "liveaudio.asgi:application",
        ]
        self.process = subprocess.Popen(
            daphne, cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )
        if set_up:
            try:
                self.set_up(also=also)
            except BaseException:
                self.stop()
                raise

    def wait_until_serving(self) -> None:
        assert self.process is not None, "the server was never launched"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server died:\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)  # polling for the port, not waiting on behaviour
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def copy_migrated_sqlite(self) -> None:
        """A new SQLite file starts as the run's migrated copy."""
        sqlite = Path(self.env["LIVEAUDIO_SQLITE_PATH"])
        if not self.env.get("LIVEAUDIO_DATABASE_URL") and not sqlite.exists():
            shutil.copyfile(migrated_sqlite(), sqlite)

    def set_up(self, *, also: str = "") -> None:
        """Migrate (from the run's migrated copy, for a new SQLite file) and make the demo;
        ``also``: more Python for the same shell (each shell is a Django start-up, 1.4 s)."""
        self.copy_migrated_sqlite()
        self.manage("shell", "-c", SET_UP.format(base_url=self.url) + (f"; {also}" if also else ""))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                # daphne waits for open application tasks (Redis receive loops) on SIGTERM.
                self.process.kill()
                self.process.wait(5)


def start_sharing(first: LiveServer, *others: LiveServer) -> None:
    """Start servers of one database: ``first`` sets it up, the others start meanwhile."""
    for other in others:
        other.launch(set_up=False)
    try:
        first.start()
        for other in others:
            other.wait_until_serving()
    except BaseException:
        for server in (first, *others):
            server.stop()
        raise
