"""ICE configuration: which ICE servers the server uses, and what counts as loopback.

Keeping every packet on loopback (tests, CI, one machine) takes patches of aioice:
`patches.restrict_host_candidates_to_loopback`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiortc import RTCConfiguration, RTCIceServer

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # an mDNS name such as abcd.local: resolving it means multicast
        return False


def rtc_configuration(ice_servers: Iterable[RTCIceServer] = ()) -> RTCConfiguration:
    """An RTCConfiguration with an explicit ICE server list.

    aiortc falls back to Google's public STUN server when `iceServers` is None, so
    the list is always passed, empty by default: no traffic leaves the machine
    unless the operator configures a STUN/TURN server.
    """
    return RTCConfiguration(iceServers=list(ice_servers))
