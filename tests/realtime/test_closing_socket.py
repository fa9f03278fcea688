"""A socket the server has closed but whose peer has not yet answered the close: the room
goes on sending to it (a chat message, an update) until daphne sees the close. Those sends
must be dropped quietly, not raise "Attempt to send on a closed protocol" into the log.

The participant here is a raw TCP socket speaking websocket through `websockets`' sans-I/O
protocol, so the test decides when (never) it answers the server's close frame: the window
lasts until autobahn's close handshake times out and drops the connection.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Origin
from websockets.uri import parse_uri

from rooms.tokens import token_mint
from tests.live_clients import DEMO_APP, DEMO_ROOM, LiveClient, demo_app
from tests.servers import LiveServer

TIMEOUT = 20


class SilentCloser:
    """A participant that reads frames but never answers the server's close frame."""

    def __init__(self, server: LiveServer, token: str) -> None:
        url = f"{server.ws_url}/ws/rooms/{DEMO_APP}/{DEMO_ROOM}/?token={token}"
        self.protocol = ClientProtocol(parse_uri(url), origin=Origin(server.url))
        self.socket = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        self.closed_by_server = False
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self) -> None:
        if not self.closed_by_server:  # after the server's close, nothing goes out: no answer
            for data in self.protocol.data_to_send():
                if data:
                    self.socket.sendall(data)

    def send_json(self, data: dict) -> None:
        self.protocol.send_text(json.dumps(data).encode())
        self._flush()

    def frames(self) -> Iterator[dict | None]:
        """JSON frames as they come; None once the server's close frame came; ends at EOF."""
        while True:
            try:
                data = self.socket.recv(65536)
            except ConnectionResetError:  # autobahn drops an unanswered close this way
                return
            if not data:
                return
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    continue
                assert isinstance(event, Frame)
                if event.opcode is Opcode.CLOSE:
                    self.closed_by_server = True
                    yield None
                elif event.opcode is Opcode.TEXT and event.data.startswith(b"{"):
                    yield json.loads(event.data)

    def read_until(self, predicate) -> dict | None:
        for frame in self.frames():
            if predicate(frame):
                return frame
        raise AssertionError("the connection ended first")


@pytest.mark.asyncio
async def test_sends_to_a_socket_closing_after_leave_are_dropped_quietly(server) -> None:
    app = demo_app(server)
    chatter = await LiveClient.join(server, app, "chatter")
    leaver = SilentCloser(
        server, token_mint(app=app, room_id=DEMO_ROOM, user_id="leaver", user_name="Leaver")
    )
    leaver.read_until(lambda frame: frame is not None and frame["type"] == "room.joined")

    leaver.send_json({"action": "room.leave", "requestID": "bye"})
    leaver.read_until(lambda frame: frame is None)  # the server's close frame, left unanswered
    # While the leaver's socket is closing, the room sends it a chat message each.
    for n in range(3):
        reply = await chatter.request("message.send", message=f"still here {n}")
        assert reply["type"] == "reply", reply
    await chatter.wait_for(lambda frame: frame.get("type") == "message.onReceived", TIMEOUT)
    # Autobahn's close handshake times out and drops the TCP connection: the window is over.
    assert list(leaver.frames()) == []
    leaver.socket.close()
    await chatter.socket.close()
    server.stop()

    log = server.log.read_text()
    assert "Attempt to send on a closed protocol" not in log, log
    assert "Traceback" not in log, log
