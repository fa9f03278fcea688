"""ICE configuration: which addresses the server offers, which ICE servers it uses.

aioice 0.13 gathers host candidates through the module-level function
`aioice.ice.get_host_addresses`, and that function skips 127.0.0.1. Tests, CI and
a single-machine setup must keep all traffic on loopback, so we replace that
function rather than rely on whatever interfaces the machine happens to have.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aioice
import aioice.ice
import aioice.stun
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_original_add_remote_candidate = aioice.ice.Connection.add_remote_candidate
_original_request_received = aioice.ice.Connection.request_received


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # an mDNS name such as abcd.local: resolving it means multicast
        return False


def restrict_host_candidates_to_loopback(addresses: Sequence[str] = (LOOPBACK,)) -> None:
    """Make every ICE agent in this process gather host candidates on `addresses` only.

    Process-wide on purpose: aiortc builds its aioice `Connection`s internally, so
    there is no per-connection hook. Calling it twice is harmless.
    """
    fixed = list(addresses)

    def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = loopback_host_addresses
    # The far end (a browser) also offers its real interfaces and mDNS names. Ignore those
    # candidates and any check arriving from them, so no packet is ever sent anywhere but
    # loopback: not even to this machine's own LAN address, nor an mDNS multicast query.
    aioice.ice.Connection.add_remote_candidate = _add_loopback_remote_candidate
    aioice.ice.Connection.request_received = _loopback_request_received


async def _add_loopback_remote_candidate(
    self: aioice.ice.Connection, remote_candidate: aioice.Candidate | None
) -> None:
    if remote_candidate is not None and not is_loopback(remote_candidate.host):
        return
    await _original_add_remote_candidate(self, remote_candidate)


def _loopback_request_received(
    self: aioice.ice.Connection, message: Any, addr: tuple[str, int], protocol: Any
) -> None:
    if is_loopback(addr[0]):
        _original_request_received(self, message, addr, protocol)


def restore_host_candidates() -> None:
    """Undo `restrict_host_candidates_to_loopback` (gather on real interfaces again)."""
    aioice.ice.get_host_addresses = _original_get_host_addresses
    aioice.ice.Connection.add_remote_candidate = _original_add_remote_candidate
    aioice.ice.Connection.request_received = _original_request_received


# RFC 7675: consent expires after 30 s *without any answer*. aioice instead counts a check
# that is not answered within 0.5 s (one try, no retransmission) as a failure and gives up
# after 6 of them in a row, so 30 s of busy event loops on either side (a join storm) cut
# healthy connections: seated speakers lost their peers at 100-200 listeners.
CONSENT_EXPIRY_SECONDS = 30.0
CONSENT_RETRANSMISSIONS = 3  # one check waits 0.5 + 1 + 2 + 4 s before it counts as lost


def install_consent_leak_fix() -> None:
    """Replace aioice 0.13's consent freshness loop (RFC 7675) with a patient one.

    Two fixes. A connection closed during ICE no longer leaks a consent task that loops
    every ~5 s forever (`connect()` starts it even when `close()` already ran). And a
    late answer counts: consent expires only after `CONSENT_EXPIRY_SECONDS` without any.
    Idempotent.
    """
    connection = aioice.ice.Connection
    if getattr(connection.query_consent, "_liveaudio_guard", False):
        return
    connection.query_consent = _query_consent  # type: ignore[method-assign]


async def _query_consent(self: aioice.ice.Connection) -> None:
    if getattr(self, "_closing", False):
        return
    assert self.remote_password is not None
    loop = asyncio.get_running_loop()
    last_answer = loop.time()
    while True:
        await asyncio.sleep(aioice.ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in self._nominated.values():
            with contextlib.suppress(aioice.stun.TransactionError):
                await pair.protocol.request(
                    self.build_request(pair, nominate=False),
                    pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
                last_answer = loop.time()
        if loop.time() - last_answer > CONSENT_EXPIRY_SECONDS:
            logger.info("ICE consent expired: no answer for %.0f s", CONSENT_EXPIRY_SECONDS)
            self._query_consent_task = None
            await self.close()
            return


_query_consent._liveaudio_guard = True  # type: ignore[attr-defined]


def install_close_race_fix() -> None:
    """Stop aiortc 1.16 from leaking RTCP tasks of a connection closed mid-handshake.

    `RTCPeerConnection.__connect()` runs in its own task and starts the senders and
    receivers once the DTLS handshake completes. When `close()` runs while the handshake
    is finishing, it stops the (not yet started) transceivers first; the late start then
    leaves one RTCP task per sender and receiver looping forever on a dead transport.
    The guard stops them again once `__connect()` is over, if the connection was closed
    meanwhile (stopping is idempotent). Idempotent.
    """
    connect_name = "_RTCPeerConnection__connect"
    original = getattr(RTCPeerConnection, connect_name, None)
    if original is None:
        raise RuntimeError("aiortc's RTCPeerConnection changed: no __connect to guard")
    if getattr(original, "_liveaudio_guard", False):
        return

    async def connect(self: RTCPeerConnection) -> None:
        try:
            await original(self)
        finally:
            if self._RTCPeerConnection__isClosed:  # close() began: undo a late start
                for transceiver in self.getTransceivers():
                    await transceiver.stop()

    connect._liveaudio_guard = True  # type: ignore[attr-defined]
    setattr(RTCPeerConnection, connect_name, connect)


def rtc_configuration(ice_servers: Iterable[RTCIceServer] = ()) -> RTCConfiguration:
    """An RTCConfiguration with an explicit ICE server list.

    aiortc falls back to Google's public STUN server when `iceServers` is None, so
    the list is always passed, empty by default: no traffic leaves the machine
    unless the operator configures a STUN/TURN server.
    """
    return RTCConfiguration(iceServers=list(ice_servers))
