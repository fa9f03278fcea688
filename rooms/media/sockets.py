"""UDP reads that keep up: drain a datagram socket on each wake-up, not one packet.

asyncio's datagram transport (3.11) reads **one** datagram each time the selector reports
the socket readable. Every peer has its own socket, and one loop iteration serves each ready
socket once, so a speaker's socket (50 audio packets a second, plus STUN and RTCP) is
drained at most once per iteration. When iterations take longer than 20 ms (a busy mixer
tick to hundreds of listeners), the backlog only grows: audio arrives later and later, and
the ICE consent answers queued behind it arrive too late, so after 30 s the server drops
the speaker (seen in bench/room_load.py at 100 listeners). Reading up to
`MAX_DATAGRAMS_PER_WAKEUP` at a time keeps every socket's queue short.
"""

from __future__ import annotations

from asyncio import selector_events

MAX_DATAGRAMS_PER_WAKEUP = 64  # bounded, so one flooded socket cannot starve the loop

_Transport = selector_events._SelectorDatagramTransport
_original_read_ready = _Transport._read_ready


def install_datagram_drain() -> None:
    """Make every asyncio datagram transport of this process drain its socket; idempotent."""
    _Transport._read_ready = _read_ready  # type: ignore[method-assign]


def uninstall_datagram_drain() -> None:
    _Transport._read_ready = _original_read_ready  # type: ignore[method-assign]


def _read_ready(self: _Transport) -> None:  # asyncio's own, in a loop
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
