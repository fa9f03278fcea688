"""Every change liveaudio makes to a third-party internal, for the versions it was written for.

aiortc and aioice give no hook for what the media plane needs, so it replaces a few of their
private functions and attributes, and one of asyncio's. Each patch below says why. They are
all here so that an upgrade has one module to read: `check_versions` refuses, at start, any
aiortc, aioice or Python it was not checked against (`WRITTEN_FOR`, the pins of
requirements.txt). After an upgrade, read each patch against the new source, then add the
version there.

Process-wide (installed once; each `install_*` is idempotent):
- `restrict_host_candidates_to_loopback`: aioice `ice.get_host_addresses`,
  `Connection.add_remote_candidate`, `Connection.request_received` (no packet leaves loopback);
- `install_consent_leak_fix`: aioice `Connection.query_consent` (patient RFC 7675 consent);
- `install_close_race_fix`: aiortc `RTCPeerConnection.__connect` (no RTCP tasks leaked by a
  close during the handshake);
- `install_fast_audio_level`: aiortc `rtp.compute_audio_level_dbov` (numpy, not a loop);
- `install_datagram_drain`: asyncio `_SelectorDatagramTransport._read_ready` (drain a UDP
  socket on each wake-up).

Per object:
- `use_worker_certificate`: aiortc `RTCPeerConnection.__certificates` (one DTLS certificate
  per process, not one per peer);
- `replace_jitter_buffer`: aiortc `RTCRtpReceiver.__jitter_buffer` (raw Opus to our playout);
- `SenderInternals`: aiortc `RTCRtpSender`'s `_run_rtp` / `_run_rtcp` loops and the private
  counters its RTCP reports read (the direct send path of `outbound.py`).

`outbound.RtpWire` also *reads* aiortc's private transport state on its 20 ms path
(`RTCDtlsTransport._state`, `._tx_srtp`, the ICE connection's `_nominated` pair, and the
asyncio datagram transport's `_sock` that `outbound.fan_out` sends on directly) without
changing it; the version check covers those reads too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.metadata
import logging
import random
import sys
from asyncio import selector_events
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import aioice
import aioice.ice
import aioice.stun
import aiortc.rtp
from aiortc import (
    RTCCertificate,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
)

from .ice import LOOPBACK, is_loopback
from .levels import frame_dbov

logger = logging.getLogger(__name__)

# What each patch was read against: requirements.txt pins aiortc and aioice to these.
WRITTEN_FOR: dict[str, tuple[str, ...]] = {
    "aiortc": ("1.16.0",),
    "aioice": ("0.13.0",),
    "python": ("3.11",),  # the asyncio datagram transport
}


class UnsupportedVersion(RuntimeError):
    """An installed package is not one that rooms/media/patches.py was checked against."""

    def __init__(self, *, package: str, found: str, expected: Sequence[str]) -> None:
        super().__init__(
            f"liveaudio's media patches were written for {package} {' or '.join(expected)}, "
            f"but {package} {found} is installed: install the version requirements.txt pins, "
            f"or check each patch in rooms/media/patches.py against {package} {found} and "
            "add it to WRITTEN_FOR"
        )
        self.package = package
        self.found = found
        self.expected = tuple(expected)


def installed_versions() -> dict[str, str]:
    """The versions of what the patches touch, as installed in this interpreter."""
    versions = {name: importlib.metadata.version(name) for name in ("aiortc", "aioice")}
    versions["python"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    return versions


def check_versions(installed: Mapping[str, str] | None = None) -> None:
    """Raise `UnsupportedVersion` for the first package not in `WRITTEN_FOR`.

    `installed` defaults to `installed_versions()`; the check runs before any patch is
    installed and when a media engine or worker starts.
    """
    found_versions = installed_versions() if installed is None else installed
    for package, expected in WRITTEN_FOR.items():
        found = found_versions[package]
        if found not in expected:
            raise UnsupportedVersion(package=package, found=found, expected=expected)


_checked = False


def _require_known_versions() -> None:
    global _checked
    if not _checked:
        check_versions()
        _checked = True


def install_server_patches(*, loopback_only: bool) -> None:
    """What a process hosting a `MediaHub` installs before its first peer (the engine's
    thread or the media worker); the peer-level fixes come with each `MediaPeer`."""
    _require_known_versions()
    if loopback_only:
        restrict_host_candidates_to_loopback()
    install_fast_audio_level()


def install_peer_fixes() -> None:
    """The fixes every server `MediaPeer` relies on; idempotent."""
    install_consent_leak_fix()
    install_close_race_fix()
    install_datagram_drain()


# -- aioice: host candidates on loopback only ---------------------------------------------------
# aioice 0.13 gathers host candidates through the module-level `aioice.ice.get_host_addresses`,
# which skips 127.0.0.1. Tests, CI and a single-machine setup must keep all traffic on
# loopback, so that function is replaced rather than trusting the machine's interfaces.

_original_get_host_addresses = aioice.ice.get_host_addresses
_original_add_remote_candidate = aioice.ice.Connection.add_remote_candidate
_original_request_received = aioice.ice.Connection.request_received


def restrict_host_candidates_to_loopback(addresses: Sequence[str] = (LOOPBACK,)) -> None:
    """Make every ICE agent in this process gather host candidates on `addresses` only.

    Process-wide on purpose: aiortc builds its aioice `Connection`s internally, so
    there is no per-connection hook. Calling it twice is harmless.
    """
    _require_known_versions()
    fixed = list(addresses)

    def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    connection = aioice.ice.Connection
    aioice.ice.get_host_addresses = loopback_host_addresses
    # The far end (a browser) also offers its real interfaces and mDNS names. Ignore those
    # candidates and any check arriving from them, so no packet is ever sent anywhere but
    # loopback: not even to this machine's own LAN address, nor an mDNS multicast query.
    connection.add_remote_candidate = _add_loopback_remote_candidate  # type: ignore[method-assign]
    connection.request_received = _loopback_request_received  # type: ignore[method-assign]


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
    connection = aioice.ice.Connection
    aioice.ice.get_host_addresses = _original_get_host_addresses
    connection.add_remote_candidate = _original_add_remote_candidate  # type: ignore[method-assign]
    connection.request_received = _original_request_received  # type: ignore[method-assign]


# -- aioice: consent freshness ------------------------------------------------------------------
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
    _require_known_versions()
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


# -- aiortc: a close during the DTLS handshake --------------------------------------------------

_CONNECT = "_RTCPeerConnection__connect"
_IS_CLOSED = "_RTCPeerConnection__isClosed"


def install_close_race_fix() -> None:
    """Stop aiortc 1.16 from leaking RTCP tasks of a connection closed mid-handshake.

    `RTCPeerConnection.__connect()` runs in its own task and starts the senders and
    receivers once the DTLS handshake completes. When `close()` runs while the handshake
    is finishing, it stops the (not yet started) transceivers first; the late start then
    leaves one RTCP task per sender and receiver looping forever on a dead transport.
    The guard stops them again once `__connect()` is over, if the connection was closed
    meanwhile (stopping is idempotent). Idempotent.
    """
    _require_known_versions()
    original = getattr(RTCPeerConnection, _CONNECT, None)
    if original is None:
        raise RuntimeError("aiortc's RTCPeerConnection changed: no __connect to guard")
    if getattr(original, "_liveaudio_guard", False):
        return

    async def connect(self: RTCPeerConnection) -> None:
        try:
            await original(self)
        finally:
            if getattr(self, _IS_CLOSED):  # close() began: undo a late start
                for transceiver in self.getTransceivers():
                    await transceiver.stop()

    connect._liveaudio_guard = True  # type: ignore[attr-defined]
    setattr(RTCPeerConnection, _CONNECT, connect)


# -- aiortc: speaking levels of outbound raw audio ----------------------------------------------


def install_fast_audio_level() -> None:
    """Replace aiortc's pure-Python RFC 6465 level computation with `levels.frame_dbov`.

    aiortc's RTCRtpSender runs it on every *raw* AudioFrame it encodes (our bots'
    outbound tone; the server sends pre-encoded packets and never reaches it). The
    original loops over samples in Python and costs about a quarter of a core.
    The receiving side never computes levels in aiortc 1.16; our mixer computes
    them from the decoded PCM it already has (see `levels.rms_level`).
    """
    _require_known_versions()
    aiortc.rtp.compute_audio_level_dbov = frame_dbov


# -- asyncio: UDP reads that keep up ------------------------------------------------------------
# asyncio's datagram transport (3.11) reads **one** datagram each time the selector reports
# the socket readable. Every peer has its own socket, and one loop iteration serves each ready
# socket once, so a speaker's socket (50 audio packets a second, plus STUN and RTCP) is
# drained at most once per iteration. When iterations take longer than 20 ms (a busy mixer
# tick to hundreds of listeners), the backlog only grows: audio arrives later and later, and
# the ICE consent answers queued behind it arrive too late, so after 30 s the server drops
# the speaker (seen in bench/room_load.py at 100 listeners). Reading up to
# `MAX_DATAGRAMS_PER_WAKEUP` at a time keeps every socket's queue short.

MAX_DATAGRAMS_PER_WAKEUP = 64  # bounded, so one flooded socket cannot starve the loop

_DatagramTransport: Any = selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]
_original_read_ready = _DatagramTransport._read_ready


def install_datagram_drain() -> None:
    """Make every asyncio datagram transport of this process drain its socket; idempotent."""
    _require_known_versions()
    _DatagramTransport._read_ready = _read_ready


def uninstall_datagram_drain() -> None:
    _DatagramTransport._read_ready = _original_read_ready


def _read_ready(self: Any) -> None:  # asyncio's own, in a loop
    for _ in range(MAX_DATAGRAMS_PER_WAKEUP):
        if self._conn_lost:
            return
        try:
            data, addr = self._sock.recvfrom(self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        else:
            self._protocol.datagram_received(data, addr)


# -- aiortc: the receiver's jitter buffer -------------------------------------------------------
# `RTCRtpReceiver._handle_rtp_packet` does all the RTP/RTCP bookkeeping (statistics, RTX,
# SSRCs), depayloads, then hands each packet to `self.__jitter_buffer.add(packet)` and
# decodes only what that returns. A stand-in there receives every packet and, returning
# "no frame", leaves aiortc's decoder thread without work (see `receiver_tap.py`).

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


# -- aiortc: one DTLS certificate per process -----------------------------------------------
# aiortc makes a key pair and a self-signed certificate for every RTCPeerConnection. A
# browser checks only that the DTLS certificate matches the fingerprint in the answer, so
# every peer of a worker can show the same one (what Janus and LiveKit do); it is made again
# a day before it expires (aiortc's are valid for 30 days).

_worker_certificate: RTCCertificate | None = None
CERTIFICATE_RENEW_BEFORE = datetime.timedelta(days=1)


def worker_certificate() -> RTCCertificate:
    global _worker_certificate
    now = datetime.datetime.now(datetime.UTC)
    if _worker_certificate is None or _worker_certificate.expires - now < CERTIFICATE_RENEW_BEFORE:
        _worker_certificate = RTCCertificate.generateCertificate()
    return _worker_certificate


def use_worker_certificate(pc: RTCPeerConnection) -> None:
    """Before the first offer or answer: `pc` shows this process's certificate."""
    pc._RTCPeerConnection__certificates = [worker_certificate()]  # type: ignore[attr-defined]


def jitter_buffer(receiver: RTCRtpReceiver) -> Any:
    """The receiver's jitter buffer (aiortc's, or a stand-in put there before)."""
    _require_known_versions()
    buffer = getattr(receiver, _JITTER_BUFFER, None)
    if buffer is None:
        raise RuntimeError("aiortc's RTCRtpReceiver changed: no jitter buffer to replace")
    return buffer


def replace_jitter_buffer(receiver: RTCRtpReceiver, stand_in: object) -> None:
    """Give `receiver` a stand-in with aiortc's `add(packet) -> (pli, frame)`; before media."""
    jitter_buffer(receiver)  # it must be there to be replaced
    setattr(receiver, _JITTER_BUFFER, stand_in)


# -- aiortc: the sender's loops and counters ----------------------------------------------------

_SENDER = "_RTCRtpSender__"


class SenderInternals:
    """The private parts of an aiortc `RTCRtpSender` that the direct send path takes over.

    aiortc's `send()` starts `self._run_rtp(codec)` and `self._run_rtcp()`; instance
    attributes set by `replace_loops` are found before the class's methods. Its RTCP sender
    reports and round-trip estimate read the counters `record_sent` and `remember_report`
    keep, and `stop()` waits on the started/exited events.
    """

    NAMES = (
        "rtp_started", "rtp_exited", "track", "mid", "rtp_header_extensions_map",
        "ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count",
        "rtcp_started", "rtcp_exited", "lsr", "lsr_time", "cname",
    )  # fmt: skip

    def __init__(self, sender: RTCRtpSender) -> None:
        _require_known_versions()
        missing = [name for name in self.NAMES if not hasattr(sender, _SENDER + name)]
        if missing:
            raise RuntimeError(f"aiortc's RTCRtpSender changed: no {', '.join(missing)}")
        self.sender = sender

    def _get(self, name: str) -> Any:
        return getattr(self.sender, _SENDER + name)

    def _set(self, name: str, value: object) -> None:
        setattr(self.sender, _SENDER + name, value)

    def replace_loops(
        self,
        *,
        run_rtp: Callable[[RTCRtpCodecParameters], Coroutine[Any, Any, None]],
        run_rtcp: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.sender._run_rtp = run_rtp  # type: ignore[method-assign,assignment]
        self.sender._run_rtcp = run_rtcp  # type: ignore[method-assign]

    @property
    def mid(self) -> str | None:
        return self._get("mid")

    @property
    def header_extensions_map(self) -> aiortc.rtp.HeaderExtensionsMap:
        return self._get("rtp_header_extensions_map")

    @property
    def cname(self) -> str | None:
        return self._get("cname")

    def rtp_started(self) -> None:
        self._get("rtp_started").set()

    def rtp_exited(self) -> None:
        """The RTP loop is over: the sender has no track, and `stop()` may go on."""
        self._set("track", None)
        self._get("rtp_exited").set()

    def rtcp_started(self) -> None:
        self._get("rtcp_started").set()

    def rtcp_exited(self) -> None:
        self._get("rtcp_exited").set()

    def record_sent(self, *, ntp: int, rtp_timestamp: int, octets: int, packets: int) -> None:
        """A matching (NTP, RTP) time and the counts so far, for the next sender report."""
        self._set("ntp_timestamp", ntp)
        self._set("rtp_timestamp", rtp_timestamp)
        self._set("octet_count", octets)
        self._set("packet_count", packets)

    def sent(self) -> tuple[int, int, int, int]:
        """(NTP time, RTP timestamp, packets, octets) as last recorded."""
        return (
            self._get("ntp_timestamp"),
            self._get("rtp_timestamp"),
            self._get("packet_count"),
            self._get("octet_count"),
        )

    def remember_report(self, *, ntp: int, at: float) -> None:
        """What aiortc keeps of a sent report to estimate the round-trip time."""
        self._set("lsr", (ntp >> 16) & 0xFFFFFFFF)
        self._set("lsr_time", at)
