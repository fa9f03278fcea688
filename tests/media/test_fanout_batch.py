"""The one-pass fan-out (`outbound.fan_out`): real loopback sockets, real SRTP keys.

Each listener is an `RtpWire` on an asyncio datagram transport of its own (as aioice gives
every peer) or on one shared socket (what `sendmmsg` batches); the far end unprotects with
the matching SRTP session and reads the RTP header aiortc would.

Two paths send: the native loop (`fastpath`, C, what the server uses when `scripts/setup`
built it) and the Python one (without the library, or for a wire it cannot take). Tests of
what a listener gets run on both (`either_path`); tests of the Python batching's own rules
(`sendmmsg`, asyncio's transport) on the Python path (`python_path`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import pytest
import pytest_asyncio
from aiortc.rtp import RtpPacket

from bench.fanout_micro import (
    Listener,
    Receivers,
    loopback_endpoint,
    opus_packet,
    receiving_session,
)
from bench.fanout_micro import (
    listener_on as _listener_on,
)
from rooms.media import fastpath, sendmmsg
from rooms.media.codec import FRAME_SAMPLES
from rooms.media.mixer import FANOUT_CHUNK, RoomMixer
from rooms.media.outbound import (
    MAX_SOCKET_BACKLOG,
    SENDER_REPORT_EVERY,
    SLOT_CHECK_EVERY,
    fan_out,
)

ORIGIN = 0xFFFF_F000  # close to the wrap, so the timestamp arithmetic is exercised


class Setup:
    """Listeners on loopback and the receivers they send to (one receiver each)."""

    def __init__(self) -> None:
        self.transports: list[asyncio.DatagramTransport] = []
        self.receivers: list[Receivers] = []
        self.listeners: list[Listener] = []

    async def listeners_on_own_sockets(self, count: int) -> list[Listener]:
        made = []
        for _ in range(count):
            transport, protocol = await loopback_endpoint()
            self.transports.append(transport)
            made.append(self._listener(transport, protocol))
        return made

    async def listeners_on_one_socket(self, count: int) -> list[Listener]:
        transport, protocol = await loopback_endpoint()
        self.transports.append(transport)
        return [self._listener(transport, protocol) for _ in range(count)]

    def _listener(self, transport: Any, protocol: Any) -> Listener:
        receiver = Receivers(1)
        self.receivers.append(receiver)
        listener = _listener_on(transport, protocol, receiver.addresses[0], timestamp_origin=ORIGIN)
        self.listeners.append(listener)
        return listener

    def received(self, listener: Listener) -> list[RtpPacket]:
        """What `listener`'s far end got since the last call, unprotected and parsed."""
        receiver = self.receivers[self.listeners.index(listener)]
        datagrams: list[bytes] = []
        receiver.drain(datagrams)
        session = receiving_session(listener.key)
        extensions = listener.wire._sender.header_extensions_map
        return [RtpPacket.parse(session.unprotect(d), extensions) for d in datagrams]

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        for receiver in self.receivers:
            receiver.close()


@pytest_asyncio.fixture
async def setup() -> AsyncIterator[Setup]:
    made = Setup()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fan-out as without the native library."""
    monkeypatch.setattr(fastpath, "table", lambda: None)


@pytest.fixture(params=["native", "python"])
def either_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(fastpath, "table", lambda: None)
    return str(request.param)


def test_the_native_fan_out_is_built_here() -> None:
    """scripts/setup builds it: the server's path is the one these tests run."""
    assert fastpath.available()


@pytest.fixture(scope="module")
def packet() -> av.Packet:
    return opus_packet()


def at(packet: av.Packet, frame: int) -> av.Packet:
    packet.pts = frame * FRAME_SAMPLES
    return packet


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Wrap `owner.name` so each call's arguments are recorded (and the call still made)."""
    calls: list[Any] = []
    original: Callable[..., Any] = getattr(owner, name)

    def recording(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(owner, name, recording)
    return calls


@pytest.mark.asyncio
async def test_every_listener_gets_its_own_srtp_stream_in_order(
    setup: Setup, packet, either_path
) -> None:
    listeners = await setup.listeners_on_own_sockets(4)
    tracks = [listener.track for listener in listeners]
    for frame in (1, 2, 3, 5):  # frame 4 never made (a mixer that skipped ahead)
        fan_out(tracks, at(packet, frame), None, bytes(packet))
    for listener in listeners:
        got = setup.received(listener)
        assert [p.payload for p in got] == [bytes(packet)] * 4
        first = got[0].sequence_number
        # The skipped frame takes its sequence number with it: the listener sees the gap.
        assert [(p.sequence_number - first) & 0xFFFF for p in got] == [0, 1, 2, 4]
        expected = [(ORIGIN + f * FRAME_SAMPLES) & 0xFFFFFFFF for f in (1, 2, 3, 5)]
        assert [p.timestamp for p in got] == expected
        assert {p.ssrc for p in got} == {listener.wire._sender.sender._ssrc}
        assert {p.extensions.mid for p in got} == {"0"}
        assert all(p.extensions.abs_send_time is not None for p in got)
        assert (listener.track.sent, listener.track.dropped, listener.wire.sent) == (4, 0, 4)


@pytest.mark.asyncio
async def test_listeners_sharing_a_socket_go_out_in_one_sendmmsg(
    setup: Setup, packet, monkeypatch, python_path
) -> None:
    calls = count_calls(monkeypatch, sendmmsg, "_sendmmsg")
    listeners = await setup.listeners_on_one_socket(7)
    fan_out([listener.track for listener in listeners], at(packet, 1), None, bytes(packet))
    assert [call[2] for call in calls] == [7]  # (fd, headers, count, flags): one call of 7
    for listener in listeners:
        (got,) = setup.received(listener)  # unprotected with this listener's key only
        assert got.payload == bytes(packet)
        assert got.timestamp == (ORIGIN + FRAME_SAMPLES) & 0xFFFFFFFF


@pytest.mark.asyncio
async def test_a_lone_datagram_is_written_to_its_socket_not_through_asyncio(
    setup: Setup, packet, monkeypatch, either_path
) -> None:
    (listener,) = await setup.listeners_on_own_sockets(1)
    through_asyncio = count_calls(monkeypatch, listener.transport, "sendto")
    fan_out([listener.track], at(packet, 1), None, bytes(packet))
    assert through_asyncio == []
    assert len(setup.received(listener)) == 1


@pytest.mark.asyncio
async def test_without_sendmmsg_each_datagram_goes_through_the_transport(
    setup: Setup, packet, monkeypatch, python_path
) -> None:
    monkeypatch.setattr(sendmmsg, "_sendmmsg", None)
    listeners = await setup.listeners_on_one_socket(3)
    through_asyncio = count_calls(monkeypatch, listeners[0].transport, "sendto")
    fan_out([listener.track for listener in listeners], at(packet, 1), None, bytes(packet))
    assert len(through_asyncio) == 3
    for listener in listeners:
        assert len(setup.received(listener)) == 1


@pytest.mark.asyncio
async def test_what_the_kernel_did_not_take_goes_through_the_transport_in_order(
    setup: Setup, packet, monkeypatch, python_path
) -> None:
    """sendmmsg stopping early (a full send buffer) leaves the rest to asyncio, which
    queues them as it queues its own; none is lost or reordered."""
    real = sendmmsg._sendmmsg
    monkeypatch.setattr(
        sendmmsg, "_sendmmsg", lambda fd, headers, count, flags: real(fd, headers, 1, flags)
    )
    listeners = await setup.listeners_on_one_socket(3)
    through_asyncio = count_calls(monkeypatch, listeners[0].transport, "sendto")
    fan_out([listener.track for listener in listeners], at(packet, 1), None, bytes(packet))
    assert [call[1] for call in through_asyncio] == [lst.remote for lst in listeners[1:]]
    for listener in listeners:
        assert len(setup.received(listener)) == 1


@pytest.mark.asyncio
async def test_a_backed_up_socket_loses_the_packet_and_the_listener_sees_the_gap(
    setup: Setup, packet, monkeypatch, either_path
) -> None:
    """Native, the wire notices at its next look (forced here) and sends in Python: the
    sequence goes on across the two paths."""
    (listener,) = await setup.listeners_on_own_sockets(1)
    tracks = [listener.track]
    fan_out(tracks, at(packet, 1), None, bytes(packet))
    monkeypatch.setattr(listener.transport, "get_write_buffer_size", lambda: MAX_SOCKET_BACKLOG + 1)
    listener.wire._pair = None  # look the pair's transport up again (it changed here)
    listener.wire.slot_left = 0
    fan_out(tracks, at(packet, 2), None, bytes(packet))
    assert (listener.track.dropped, listener.wire.dropped) == (1, 1)
    monkeypatch.setattr(listener.transport, "get_write_buffer_size", lambda: 0)
    listener.wire._pair = None
    fan_out(tracks, at(packet, 3), None, bytes(packet))
    got = setup.received(listener)
    assert [(p.sequence_number - got[0].sequence_number) & 0xFFFF for p in got] == [0, 2]
    assert listener.track.sent == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("shared", [False, True], ids=["own socket", "shared socket"])
async def test_a_socket_asyncio_holds_packets_for_is_sent_to_behind_them(
    setup: Setup, packet, monkeypatch, shared: bool, either_path
) -> None:
    """Under the limit but not empty: through the transport, never past its queue."""
    if shared:
        listeners = await setup.listeners_on_one_socket(2)
    else:
        listeners = await setup.listeners_on_own_sockets(1)
    transport = listeners[0].transport
    monkeypatch.setattr(transport, "get_write_buffer_size", lambda: 100)
    for listener in listeners:
        listener.wire._pair = None
    calls = count_calls(monkeypatch, sendmmsg, "_sendmmsg")
    through_asyncio = count_calls(monkeypatch, transport, "sendto")
    fan_out([listener.track for listener in listeners], at(packet, 1), None, bytes(packet))
    assert calls == []
    assert len(through_asyncio) == len(listeners)
    assert [listener.track.dropped for listener in listeners] == [0] * len(listeners)
    assert [len(setup.received(listener)) for listener in listeners] == [1] * len(listeners)


@pytest.mark.asyncio
async def test_the_batch_keeps_the_counters_sender_reports_read(
    setup: Setup, packet, either_path
) -> None:
    listeners = await setup.listeners_on_own_sockets(2)
    tracks = [listener.track for listener in listeners]
    frames = 2 * SENDER_REPORT_EVERY + 1
    for frame in range(1, frames + 1):
        fan_out(tracks, at(packet, frame), None, bytes(packet))
    for listener in listeners:
        listener.wire.sync_report()  # what the RTCP loop does before each report
        ntp, rtp_timestamp, packets, octets = listener.wire._sender.sent()
        assert packets == frames  # recorded with the 1st, 11th, 21st packet
        assert octets == frames * len(bytes(packet))
        assert rtp_timestamp == (ORIGIN + frames * FRAME_SAMPLES) & 0xFFFFFFFF
        assert ntp > 0


@pytest.mark.asyncio
async def test_the_mixer_fans_out_a_chunk_of_listeners_per_sendmmsg(
    setup: Setup, monkeypatch, python_path
) -> None:
    """The running server's path: `RoomMixer.tick` hands each chunk to `fan_out`."""
    calls = count_calls(monkeypatch, sendmmsg, "_sendmmsg")
    listeners = await setup.listeners_on_one_socket(FANOUT_CHUNK * 2 + 3)
    mixer = RoomMixer()
    for i, listener in enumerate(listeners):
        listener.wire._timestamp_origin = mixer.rtp_origin
        mixer.add_participant(f"L{i}", listener.track)
    mixer.tick()
    mixer.tick()
    packets = listeners[0].track.sent  # Opus may hold the first frame back
    assert packets >= 1
    assert [listener.track.sent for listener in listeners] == [packets] * len(listeners)
    # Chunks of FANOUT_CHUNK, FANOUT_CHUNK and 3 listeners: three calls per packet.
    assert [call[2] for call in calls] == [FANOUT_CHUNK, FANOUT_CHUNK, 3] * packets
    for listener in listeners:
        got = setup.received(listener)
        assert len(got) == listener.track.sent > 0
        assert got[-1].timestamp == (mixer.rtp_origin + 2 * FRAME_SAMPLES) & 0xFFFFFFFF


@pytest.mark.asyncio
@pytest.mark.parametrize("closed", [False, True], ids=["closing", "closed"])
async def test_a_closed_socket_loses_the_packet_and_the_others_still_hear(
    setup: Setup, packet, closed: bool, either_path
) -> None:
    """asyncio's datagram transport raises on sendto once closed: the wire drops instead,
    and the listeners after it in the chunk are sent to."""
    closing, open_one = await setup.listeners_on_own_sockets(2)
    closing.transport.close()
    if closed:
        await asyncio.sleep(0)  # asyncio closes the socket itself on the next iteration
    fan_out([closing.track, open_one.track], at(packet, 1), None, bytes(packet))
    assert (closing.track.dropped, closing.wire.dropped) == (1, 1)
    assert setup.received(closing) == []
    assert len(setup.received(open_one)) == 1


@pytest.mark.asyncio
async def test_the_mixer_fans_out_a_chunk_of_listeners_per_native_call(
    setup: Setup, monkeypatch
) -> None:
    """The running server's path with the library: one call into C per chunk."""
    table = fastpath.table()
    assert table is not None
    calls = count_calls(monkeypatch, table, "send")
    listeners = await setup.listeners_on_own_sockets(FANOUT_CHUNK + 3)
    mixer = RoomMixer()
    for i, listener in enumerate(listeners):
        listener.wire._timestamp_origin = mixer.rtp_origin
        mixer.add_participant(f"L{i}", listener.track)
    mixer.tick()
    mixer.tick()
    packets = listeners[0].track.sent
    assert packets >= 1
    assert [len(call[0]) for call in calls] == [FANOUT_CHUNK, 3] * packets
    for listener in listeners:
        got = setup.received(listener)
        assert len(got) == listener.track.sent == listener.wire.sent
        assert got[-1].timestamp == (mixer.rtp_origin + 2 * FRAME_SAMPLES) & 0xFFFFFFFF


@pytest.mark.asyncio
async def test_a_wire_moves_between_the_native_and_python_paths_without_a_gap(
    setup: Setup, packet
) -> None:
    (listener,) = await setup.listeners_on_own_sockets(1)
    fan_out([listener.track], at(packet, 1), None, bytes(packet))  # native
    assert listener.wire._slot >= 0
    assert listener.wire.send(bytes(packet), 2 * FRAME_SAMPLES)  # one listener: Python
    assert listener.wire._slot < 0
    fan_out([listener.track], at(packet, 3), None, bytes(packet))  # native again
    got = setup.received(listener)
    assert [(p.sequence_number - got[0].sequence_number) & 0xFFFF for p in got] == [0, 1, 2]
    assert [p.timestamp for p in got] == [
        (ORIGIN + f * FRAME_SAMPLES) & 0xFFFFFFFF for f in (1, 2, 3)
    ]
    assert listener.wire.sent == 3


@pytest.mark.asyncio
async def test_a_socket_closed_under_a_slot_never_sends_on_another_socket(
    setup: Setup, packet
) -> None:
    """The slot sends from its own duplicate of the descriptor: after the transport closes
    (and its number may be reused) packets go nowhere new, and at the wire's next look the
    slot is released and the packet dropped."""
    closing, other = await setup.listeners_on_own_sockets(2)
    tracks = [closing.track, other.track]
    fan_out(tracks, at(packet, 1), None, bytes(packet))
    table = fastpath.table()
    assert table is not None
    armed = table.armed
    closing.transport.close()
    await asyncio.sleep(0)  # asyncio closes the socket on the next iteration
    for frame in range(2, 2 + SLOT_CHECK_EVERY + 1):
        fan_out(tracks, at(packet, frame), None, bytes(packet))
    assert closing.wire._slot < 0 and table.armed == armed - 1
    assert closing.track.dropped >= 1
    assert len(setup.received(other)) == SLOT_CHECK_EVERY + 2


@pytest.mark.asyncio
async def test_a_stopped_track_gives_its_slot_and_descriptor_back(setup: Setup, packet) -> None:
    import os

    listeners = await setup.listeners_on_own_sockets(3)
    before = len(os.listdir("/proc/self/fd"))
    fan_out([listener.track for listener in listeners], at(packet, 1), None, bytes(packet))
    assert len(os.listdir("/proc/self/fd")) == before + 3
    for listener in listeners:
        listener.track.stop()
    assert len(os.listdir("/proc/self/fd")) == before
    assert all(listener.wire._slot < 0 for listener in listeners)


@pytest.mark.asyncio
async def test_a_packet_too_big_for_the_native_buffer_is_lost_with_its_gap(
    setup: Setup, packet
) -> None:
    (listener,) = await setup.listeners_on_own_sockets(1)
    tracks = [listener.track]
    fan_out(tracks, at(packet, 1), None, bytes(packet))
    fan_out(tracks, at(packet, 2), None, bytes(3000))  # no UDP datagram is that big here
    fan_out(tracks, at(packet, 3), None, bytes(packet))
    assert (listener.track.sent, listener.track.dropped, listener.wire.dropped) == (2, 1, 1)
    got = setup.received(listener)
    assert [(p.sequence_number - got[0].sequence_number) & 0xFFFF for p in got] == [0, 2]
