"""A participant in a room, as a process of its own: for tests whose hosts are network
namespaces (tests/netns.py), where the test's own process has no route to the servers.

    python tests/netns_bot.py --url ws://10.77.0.11:8000/ws/rooms/1234567/demo/ \
        --origin http://10.77.0.11:8000 --name ada [--tone 440 --seat 1] < go

It joins the room's socket with a token (`--token` or LIVEAUDIO_BOT_TOKEN), waits for a
line on stdin (so a test may start its bots at once and let them in one by one), then does
what the page does: offers, and offers again with a new peer connection (a new `Bot`)
whenever the server sends `rtc.closed`; with `--seat` it takes that seat and turns its
microphone on. It runs until stdin closes (its test is gone) or `--seconds` pass.

Stdout, one JSON object a line, each with `t` (time.monotonic(), which every namespace of
the machine shares): `{"event": "offered", "offer": n}` for each answer accepted,
`{"event": "closed", "reason": ...}` for each rtc.closed, `{"event": "mic_on"}`, and at
least every `--every` seconds `{"event": "hears", "hears": [...], "offer": n}`: the tones
the current peer heard in the last 0.5 s (`Bot.hears`). A failure is `{"event": "error"}`
and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, from anywhere

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.bot import Bot  # noqa: E402

TONES = (440.0, 660.0)


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


class Participant:
    def __init__(self, socket: ClientConnection, name: str, tone: float | None) -> None:
        self.socket, self.name, self.tone = socket, name, tone
        self.bot: Bot | None = None
        self.offers = 0
        self.offered = asyncio.Event()  # set after each answer accepted
        self.closures: asyncio.Queue[str] = asyncio.Queue()
        self.joined = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def read(self) -> None:
        async for text in self.socket:
            if not isinstance(text, str) or not text.startswith("{"):
                continue
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "room.joined":
                self.joined.set()
            elif kind == "rtc.closed":
                emit("closed", reason=frame.get("reason"), offer=self.offers)
                self.closures.put_nowait(str(frame.get("reason")))
            elif kind == "error" and not frame.get("requestID"):
                raise RuntimeError(f"refused: {frame}")
            future = self._pending.get(frame.get("requestID") or "")
            if future is not None and not future.done() and kind in ("reply", "error"):
                future.set_result(frame)
        raise RuntimeError(f"the room socket closed ({self.socket.close_code})")

    async def request(self, action: str, **args: Any) -> dict[str, Any]:
        request_id = f"{self.name}-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.socket.send(json.dumps({"action": action, "requestID": request_id, **args}))
            async with asyncio.timeout(30):
                frame = await future
        finally:
            self._pending.pop(request_id, None)
        if frame.get("type") != "reply":
            raise RuntimeError(f"{action} refused: {frame}")
        return frame

    async def offer(self) -> None:
        """A new peer connection, as the page makes one for every offer; retried while the
        server cannot place it (a worker just lost may still look alive for a beat)."""
        for attempt in itertools.count():
            if self.bot is not None:
                await self.bot.close()
            self.bot = Bot(self.name, self.tone)
            try:
                reply = await self.request("rtc.offer", sdp=await self.bot.create_offer())
                await self.bot.accept_answer(reply["data"]["sdp"])
                break
            except RuntimeError as error:
                emit("offer_error", error=str(error), attempt=attempt)
                if attempt >= 20:
                    raise
                await asyncio.sleep(0.25)
        self.offers += 1
        emit("offered", offer=self.offers)
        self.offered.set()

    async def offer_again_when_closed(self) -> None:
        while True:
            await self.closures.get()
            self.offered.clear()
            await self.offer()

    async def take_seat(self, index: int) -> None:
        """Seated, a listener's peer on a relay is moved to the mixer: the server says
        rtc.closed ("moved") and the page offers again; then the microphone goes on."""
        offers = self.offers
        await self.request("seat.take", index=index)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):  # not moved if it was on the mixer already
                while self.offers == offers:
                    await self.offered.wait()
                    self.offered.clear()
        await self.request("microphone.turnOn", isOn=True)
        emit("mic_on", offer=self.offers)

    async def report(self, every: float) -> None:
        while True:
            heard = sorted(self.bot.hears(TONES)) if self.bot is not None else []
            emit("hears", hears=heard, offer=self.offers)
            await asyncio.sleep(every)


def stdin_lines() -> asyncio.Queue[str]:
    """Stdin's lines ("" at its end), read on a daemon thread: an executor's thread blocked
    on a read would keep the process from exiting."""
    loop, lines = asyncio.get_running_loop(), asyncio.Queue[str]()

    def read() -> None:
        for line in iter(sys.stdin.readline, ""):
            with contextlib.suppress(RuntimeError):  # the loop closed: exiting anyway
                loop.call_soon_threadsafe(lines.put_nowait, line)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return lines


async def until_closed(lines: asyncio.Queue[str]) -> None:
    while await lines.get():
        pass


async def main(args: argparse.Namespace) -> None:
    token = args.token or os.environ["LIVEAUDIO_BOT_TOKEN"]
    url = f"{args.url}{'&' if '?' in args.url else '?'}token={token}"
    lines = stdin_lines()
    async with connect(
        url, origin=args.origin, max_size=None, ping_interval=None, open_timeout=30
    ) as socket:
        person = Participant(socket, args.name, args.tone or None)
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(person.read())
            async with asyncio.timeout(30):
                await person.joined.wait()
            emit("joined")
            if not await lines.get():  # the go-ahead; EOF: the test is gone
                reader.cancel()
                return
            await person.offer()
            reoffers = group.create_task(person.offer_again_when_closed())
            reporter = group.create_task(person.report(args.every))
            if args.seat is not None:
                await person.take_seat(args.seat)
            stdin = group.create_task(until_closed(lines))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.seconds):
                    await asyncio.shield(stdin)
            for task in (reader, reoffers, reporter, stdin):
                task.cancel()
        if person.bot is not None:
            await person.bot.close()


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the room's socket, without the token")
    parser.add_argument("--origin", required=True, help="the Origin header (the server's own)")
    parser.add_argument("--name", required=True, help="the user ID the token is for")
    parser.add_argument("--token", default=None, help="default: LIVEAUDIO_BOT_TOKEN")
    parser.add_argument("--tone", type=float, default=0.0, help="Hz; 0 = a silent microphone")
    parser.add_argument("--seat", type=int, default=None)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between reports")
    parser.add_argument("--seconds", type=float, default=120.0, help="at most this long")
    return parser


if __name__ == "__main__":
    try:
        asyncio.run(main(parser().parse_args()))
    except BaseException as error:
        if not isinstance(error, KeyboardInterrupt):
            emit("error", error=f"{type(error).__name__}: {error}", trace=traceback.format_exc())
        raise SystemExit(1) from None
