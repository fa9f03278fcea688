"""The fan-out's inner loop in C (`fastpath.c`), called through ctypes.

`outbound.fan_out` sends one encoded packet to every listener of a mix. In Python each
listener cost a header patch, a pylibsrtp `protect` (which allocates and copies) and a
`sendto`: ~5 µs a packet, and the relay tier's listeners are nothing but that. Here a listener
whose wire is ready has a *slot* in its thread's `Table`: the C loop patches, protects in
place (libsrtp's own `srtp_protect`, as pylibsrtp links it) and sends, for a whole chunk of
listeners in one call.

Built by `scripts/setup` (`cc`, libc only) into `_fastpath.so` next to this file. Without it
(no compiler, another platform, or `LIVEAUDIO_FASTPATH=0`) `available()` is False and every
listener takes the Python path, which does the same work.

A slot stays safe to send through while its wire lives: it holds a *duplicate* of the
socket's descriptor (closed with the slot), so a socket closed meanwhile never becomes
another socket's number, and the wire keeps the pylibsrtp session (and so libsrtp's context)
alive while its slot is armed. When a wire may use its slot is `outbound.RtpWire`'s rule.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

VERSION = 1  # LA_FASTPATH_VERSION in fastpath.c: a stale build is not used
LIBRARY = Path(__file__).with_name("_fastpath.so")

# What `Table.send` says of each listener (fastpath.c's enum).
SENT, NOT_ARMED, NOT_PROTECTED, NOT_TAKEN = 0, 1, 2, 3


def _load() -> Any:
    if os.environ.get("LIVEAUDIO_FASTPATH", "1") == "0" or not LIBRARY.exists():
        return None
    try:
        from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

        native = ctypes.CDLL(str(LIBRARY))
        if native.la_version() != VERSION:
            logger.warning("%s is stale (run scripts/setup): fan-out in Python", LIBRARY)
            return None
        protect = int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect")))
    except (OSError, AttributeError, ImportError):
        logger.exception("the native fan-out could not be loaded: fan-out in Python")
        return None
    c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
    native.la_table_new.argtypes = [c_void_p]
    native.la_table_new.restype = c_void_p
    native.la_table_free.argtypes = [c_void_p]
    native.la_slot_arm.argtypes = [
        c_void_p, c_int, c_void_p, c_int, c_char_p, c_int, c_int, c_void_p, c_int,
        c_int, c_int, ctypes.c_int64, ctypes.c_uint32,
    ]  # fmt: skip
    native.la_slot_arm.restype = c_int
    native.la_slot_disarm.argtypes = [c_void_p, c_int]
    native.la_slot_read.argtypes = [c_void_p, c_int, c_void_p]
    native.la_slot_read.restype = c_int
    native.la_send.argtypes = [
        c_void_p, c_void_p, c_int, c_char_p, c_int, ctypes.c_int64, ctypes.c_uint64, c_void_p,
    ]  # fmt: skip
    native.la_send.restype = c_int
    native.protect = protect  # type: ignore[attr-defined]
    return native


_native = _load()
_local = threading.local()


def available() -> bool:
    """Whether the native fan-out is built, current and allowed here."""
    return _native is not None


def table() -> Table | None:
    """This thread's table of slots (each media loop has its own); None without the library."""
    if _native is None:
        return None
    found: Table | None = getattr(_local, "table", None)
    if found is None:
        found = _local.table = Table()
    return found


def session_pointer(session: Any) -> int:
    """The libsrtp context (`srtp_t`) under a pylibsrtp `Session`."""
    from pylibsrtp._binding import ffi

    return int(ffi.cast("uintptr_t", session._srtp[0]))


@dataclass(frozen=True)
class SlotState:
    """A slot's state as the C loop left it: the wire takes it back when it disarms, and its
    RTCP sender reports read the counters (`sent` and `octets` since the slot was armed)."""

    sequence: int
    last_pts: int | None
    sent: int
    octets: int
    dropped: int
    last_ntp: int
    last_rtp: int


class Table:
    """One thread's slots. Not thread-safe: only its own media loop uses it."""

    def __init__(self) -> None:
        assert _native is not None
        self._pointer = _native.la_table_new(_native.protect)
        if not self._pointer:
            raise MemoryError("no memory for the fan-out's table")
        self._free: list[int] = []
        self._next = 0
        self._fds: dict[int, int] = {}
        self._read = (ctypes.c_int64 * 8)()
        self._grow(64)

    def _grow(self, capacity: int) -> None:
        self._indices = array("i", [0] * capacity)
        self._status = (ctypes.c_uint8 * capacity)()

    def arm(
        self,
        *,
        session: Any,
        fd: int,
        header: bytes,
        abs_at: int | None,
        address: Any,
        sequence: int,
        last_pts: int | None,
        origin: int,
    ) -> int:
        """A slot for one listener, sending from a duplicate of `fd` (closed by `release`)
        to `address` (a `sendmmsg.SockAddr`); -1 when the C side refused it."""
        index = self._free.pop() if self._free else self._take_next()
        duplicate = os.dup(fd)
        armed = _native.la_slot_arm(
            self._pointer, index, session_pointer(session), duplicate, header, len(header),
            -1 if abs_at is None else abs_at, address.pointer, address.length,
            sequence, last_pts is not None, last_pts or 0, origin & 0xFFFFFFFF,
        )  # fmt: skip
        if armed != 0:
            os.close(duplicate)
            self._free.append(index)
            return -1
        self._fds[index] = duplicate
        return index

    def _take_next(self) -> int:
        index, self._next = self._next, self._next + 1
        return index

    def read(self, index: int) -> SlotState:
        out = self._read
        _native.la_slot_read(self._pointer, index, out)
        return SlotState(
            sequence=out[0],
            last_pts=out[2] if out[1] else None,
            sent=out[3],
            octets=out[4],
            dropped=out[5],
            last_ntp=out[6] & 0xFFFFFFFFFFFFFFFF,  # a uint64 read as int64
            last_rtp=out[7],
        )

    def release(self, index: int) -> SlotState:
        """Disarm a slot, close its descriptor; what it had counted."""
        state = self.read(index)
        _native.la_slot_disarm(self._pointer, index)
        fd = self._fds.pop(index, None)
        if fd is not None:
            os.close(fd)
            self._free.append(index)
        return state

    def send(self, indices: list[int], payload: bytes, pts: int, ntp: int) -> bytes:
        """Send `payload` through each slot in `indices`; what became of each (`SENT`, ...)."""
        count = len(indices)
        if count > len(self._indices):
            self._grow(count)
        self._indices[:count] = array("i", indices)
        address, _ = self._indices.buffer_info()
        _native.la_send(
            self._pointer, address, count, payload, len(payload), pts, ntp, self._status
        )
        return bytes(self._status[:count])

    @property
    def armed(self) -> int:
        """Slots in use (for stats and tests)."""
        return len(self._fds)
