"""Scale-out mode for real: two daphne processes on one PostgreSQL database and one Redis
channel layer. People on different processes are in the same room."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect

from rooms.models import App
from rooms.tokens import token_mint
from tests.live_clients import postgres_database
from tests.servers import LiveServer, start_sharing
from tests.socket_client import update_with

REDIS = "redis://127.0.0.1:6379/0"
DEMO_APP, DEMO_ROOM = 1234567, "demo"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def servers(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list]:
    workdir: Path = tmp_path_factory.mktemp("scale")
    env = {
        "LIVEAUDIO_DATABASE_URL": database,
        "LIVEAUDIO_REDIS_URL": REDIS,
        "LIVEAUDIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
    }
    first, second = LiveServer(workdir, env), LiveServer(workdir, env)
    start_sharing(first, second)
    yield [first, second]
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def demo_app(servers: list[LiveServer], database: str) -> App:
    """The demo app as the servers stored it; tokens are minted here as a backend would."""
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT app_sign FROM rooms_app WHERE app_id = %s", [DEMO_APP])
        return App(app_id=DEMO_APP, app_sign=row.fetchone()[0])


class Client:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    @classmethod
    async def join(cls, server: LiveServer, app: App, user_id: str) -> Client:
        token = token_mint(app=app, room_id=DEMO_ROOM, user_id=user_id, user_name=user_id)
        url = f"{server.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={token}"
        client = cls(await connect(url, origin=server.url))
        await client.wait_for(lambda f: f["type"] == "room.joined")
        return client

    async def wait_for(self, predicate, timeout: float = 10) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                text = await self.socket.recv()
                if text.startswith("{") and predicate(frame := json.loads(text)):
                    return frame

    async def request(self, action: str, request_id: str, **args) -> dict:
        await self.socket.send(json.dumps({"action": action, "requestID": request_id, **args}))
        return await self.wait_for(lambda f: f.get("requestID") == request_id)


@pytest.mark.asyncio
async def test_two_processes_share_one_room(servers: list[LiveServer], demo_app: App) -> None:
    first, second = servers
    ada = await Client.join(first, demo_app, "ada")
    bob = await Client.join(second, demo_app, "bob")
    assert (await ada.request("seat.take", "t1", index=1))["ok"]
    changed = await bob.wait_for(update_with("seat.onChanged"))
    taken = [e["taken"] for e in changed["events"] if e["type"] == "seat.onChanged"]
    assert taken == [{"1": "ada"}]
    await bob.request("message.send", "m1", message="across processes")
    received = await ada.wait_for(lambda f: f["type"] == "message.onReceived")
    assert received["message"]["message"] == "across processes"
    await ada.socket.close()
    await bob.socket.close()


@pytest.mark.asyncio
async def test_concurrent_takes_across_processes_seat_exactly_one(servers, demo_app) -> None:
    people = [await Client.join(servers[i % 2], demo_app, f"p{i}") for i in range(10)]
    replies = await asyncio.gather(
        *(person.request("seat.take", f"take-{i}", index=5) for i, person in enumerate(people))
    )
    assert sum(r["type"] == "reply" for r in replies) == 1
    assert {r["code"] for r in replies if r["type"] == "error"} == {"seat_taken"}
    for person in people:
        await person.socket.close()


async def commands_received(client: Client, count: int) -> list[dict]:
    """The next ``count`` room commands this client is shown, in the order it was shown them."""
    messages: list[dict] = []
    while len(messages) < count:
        frame = await client.wait_for(lambda f: f["type"] == "room.commands", timeout=20)
        messages += frame["messages"]
    return messages


@pytest.mark.asyncio
async def test_room_commands_from_both_processes_come_in_one_order(servers, demo_app) -> None:
    """Senders on both processes at once: the two broadcasts cross on the way, and every
    socket still shows the commands by orderKey, the same order everywhere."""
    names = [f"c{i}" for i in range(16)]
    people = [await Client.join(servers[i % 2], demo_app, name) for i, name in enumerate(names)]
    per_person = 8

    async def send_all(person: Client, name: str) -> None:
        for n in range(per_person):
            command = base64.b64encode(f"{name}:{n}".encode()).decode()
            await person.socket.send(
                json.dumps({"action": "room.sendCommand", "roomID": DEMO_ROOM, "command": command})
            )

    others = per_person * (len(people) - 1)
    receiving = [asyncio.create_task(commands_received(p, others)) for p in people]
    await asyncio.gather(*(send_all(p, n) for p, n in zip(people, names, strict=True)))
    shown = await asyncio.gather(*receiving)
    sender_of: dict[int, str] = {}
    for messages in shown:
        for message in messages:
            sender = sender_of.setdefault(message["orderKey"], message["senderUserID"])
            assert sender == message["senderUserID"]
    everyone = sorted(sender_of)
    assert everyone == list(range(everyone[0], everyone[0] + per_person * len(people)))
    for name, messages in zip(names, shown, strict=True):
        keys = [m["orderKey"] for m in messages]
        assert keys == [key for key in everyone if sender_of[key] != name]
        # and each sender's own commands in the order it sent them
        for sender in set(names) - {name}:
            theirs = [base64.b64decode(m["message"]).decode() for m in messages]
            theirs = [t for t in theirs if t.startswith(f"{sender}:")]
            assert theirs == [f"{sender}:{n}" for n in range(per_person)]
    for person in people:
        await person.socket.close()
