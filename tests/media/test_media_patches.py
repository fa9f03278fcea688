"""rooms.media.patches: each patch of a third-party internal does its job, and none is
installed (nor a media engine started) on a version it was not written for."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import socket
import threading
from pathlib import Path

import aioice
import aioice.ice
import aiortc.rtp
import pytest

from rooms.media import MediaEngine, MediaFrontEnd, patches
from rooms.media.levels import frame_dbov
from rooms.media.patches import UnsupportedVersion, check_versions
from rooms.media.worker import MediaProcess, WorkerConfig

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
KNOWN = {"aiortc": "1.16.0", "aioice": "0.13.0", "python": "3.11"}


def test_the_installed_versions_are_the_ones_the_patches_were_written_for() -> None:
    check_versions()


@pytest.mark.parametrize(
    ("package", "version"), [("aiortc", "1.17.0"), ("aioice", "0.14.0"), ("python", "3.12")]
)
def test_the_version_check_refuses_a_version_it_was_not_written_for(
    package: str, version: str
) -> None:
    with pytest.raises(UnsupportedVersion) as refused:
        check_versions({**KNOWN, package: version})
    assert (refused.value.package, refused.value.found) == (package, version)
    message = str(refused.value)
    assert f"{package} {version} is installed" in message
    assert f"written for {package} {patches.WRITTEN_FOR[package][0]}" in message


def test_the_versions_written_for_are_the_ones_requirements_pin() -> None:
    pins = dict(re.findall(r"^([\w-]+)==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE))
    for package in ("aiortc", "aioice"):
        assert pins[package] in patches.WRITTEN_FOR[package]


@pytest.mark.asyncio
async def test_no_front_end_starts_on_a_version_the_patches_were_not_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(patches, "installed_versions", lambda: {**KNOWN, "aiortc": "2.0.0"})
    threads, children = threading.active_count(), multiprocessing.active_children()
    with pytest.raises(UnsupportedVersion, match="aiortc 2.0.0"):
        MediaEngine()
    with pytest.raises(UnsupportedVersion, match="aiortc 2.0.0"):
        MediaProcess(WorkerConfig(loopback_only=True))
    assert threading.active_count() == threads
    assert multiprocessing.active_children() == children


@pytest.mark.asyncio
async def test_both_front_ends_are_a_media_front_end() -> None:
    engine = MediaEngine()
    worker = MediaProcess(WorkerConfig(loopback_only=True))
    try:
        assert isinstance(engine, MediaFrontEnd)
        assert isinstance(worker, MediaFrontEnd)
    finally:
        await engine.close()
        await worker.close()


# -- each patch still does its job (the conftest installs the loopback ones) --------------------


def _candidate(host: str) -> aioice.Candidate:
    return aioice.Candidate("1", 1, "udp", 2130706431, host, 40000, "host")


def test_host_candidates_are_gathered_on_loopback_only() -> None:
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]


@pytest.mark.asyncio
async def test_remote_candidates_and_checks_off_loopback_are_ignored() -> None:
    connection = aioice.Connection(ice_controlling=True)
    await connection.add_remote_candidate(_candidate("192.168.1.5"))
    await connection.add_remote_candidate(_candidate("abcd.local"))
    await connection.add_remote_candidate(_candidate("127.0.0.1"))
    assert [c.host for c in connection.remote_candidates] == ["127.0.0.1"]
    # aioice itself would read this (absent) message; the patch drops it unread.
    connection.request_received(None, ("192.168.1.5", 40000), None)  # type: ignore[arg-type]
    await connection.close()


@pytest.mark.asyncio
async def test_a_connection_closed_during_ice_starts_no_consent_loop() -> None:
    patches.install_consent_leak_fix()
    connection = aioice.Connection(ice_controlling=True)
    await connection.close()
    # aioice's own loop would check consent every ~5 s forever; the fix returns at once.
    await asyncio.wait_for(connection.query_consent(), timeout=1.0)


def test_outbound_levels_are_computed_by_numpy() -> None:
    assert aiortc.rtp.compute_audio_level_dbov is frame_dbov


def test_the_close_race_guard_wraps_aiortcs_connect_once() -> None:
    private_connect = "_RTCPeerConnection__connect"
    patches.install_close_race_fix()
    connect = getattr(aiortc.RTCPeerConnection, private_connect)
    assert getattr(connect, "_liveaudio_guard", False)
    patches.install_close_race_fix()  # idempotent: guarded once, not twice
    assert getattr(aiortc.RTCPeerConnection, private_connect) is connect


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append(data)


@pytest.mark.asyncio
async def test_one_wake_up_drains_every_waiting_datagram() -> None:
    patches.install_datagram_drain()
    loop = asyncio.get_running_loop()
    transport, counter = await loop.create_datagram_endpoint(_Counter, local_addr=("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for n in range(5):
            sender.sendto(bytes([n]), transport.get_extra_info("sockname"))
        transport._read_ready()  # type: ignore[attr-defined]  # one wake-up, as the selector's
        assert counter.datagrams == [bytes([n]) for n in range(5)]
    finally:
        sender.close()
        transport.close()


def test_a_receiver_without_aiortcs_jitter_buffer_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no jitter buffer"):
        patches.replace_jitter_buffer(object(), object())  # type: ignore[arg-type]
