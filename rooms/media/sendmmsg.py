"""Many UDP datagrams from one socket in one system call: Linux's `sendmmsg(2)`, via ctypes.

Python's `socket` has no `sendmmsg`, and a C extension would need a build step, so libc's is
called through ctypes. The per-call arrays (`mmsghdr`, `iovec`, one slot per datagram) are
allocated once per `DatagramBatch` and only patched per send with `struct.pack_into`, which
costs a fraction of setting ctypes fields one by one. Addresses are encoded as `sockaddr`s
once and cached.

`available()` says whether this libc has `sendmmsg` (glibc on Linux does); without it, or for
an address family other than IPv4 / IPv6, callers send one datagram at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SLOT_BYTES = 2048  # one datagram's room: an SRTP audio packet is ~150 bytes, a UDP MTU 1500
DEFAULT_CAPACITY = 64  # datagrams per call; a larger batch is sent in several calls


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


_IOVEC_SIZE = ctypes.sizeof(_IoVec)
_MMSGHDR_SIZE = ctypes.sizeof(_MMsgHdr)
_NAME_OFFSET = _MMsgHdr.msg_hdr.offset + _MsgHdr.msg_name.offset
_NAME = struct.Struct("@PI")  # msg_name, msg_namelen (adjacent in struct msghdr)
_LENGTH = struct.Struct("@N")  # iov_len
_IOV_LEN_OFFSET = _IoVec.iov_len.offset


def _load_sendmmsg() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_sendmmsg = _load_sendmmsg()


def available() -> bool:
    """Whether this process can call `sendmmsg` (Linux with glibc or musl)."""
    return _sendmmsg is not None


@dataclass(frozen=True)
class SockAddr:
    """An address encoded as the kernel's `sockaddr_in` / `sockaddr_in6`, kept alive here."""

    buffer: Any  # the ctypes buffer the pointer points into
    pointer: int
    length: int


_sockaddrs: dict[tuple[Any, ...], SockAddr | None] = {}
_MAX_CACHED_ADDRESSES = 65536  # one per remote peer; cleared, not grown, past this


def sockaddr_for(address: tuple[Any, ...]) -> SockAddr | None:
    """`address` (as asyncio gives it: (host, port) or (host, port, flow, scope)) encoded
    once; None when it is not a numeric IPv4 / IPv6 address."""
    cached = _sockaddrs.get(address, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    encoded = _encode(address)
    if len(_sockaddrs) >= _MAX_CACHED_ADDRESSES:
        _sockaddrs.clear()
    _sockaddrs[address] = encoded
    return encoded


def _encode(address: tuple[Any, ...]) -> SockAddr | None:
    host, port = address[0], address[1]
    try:
        raw = struct.pack("=H", socket.AF_INET) + struct.pack(
            "!H4s8x", port, socket.inet_pton(socket.AF_INET, host)
        )
    except (OSError, TypeError, struct.error):
        try:
            flow, scope = (address[2], address[3]) if len(address) >= 4 else (0, 0)
            raw = struct.pack("=H", socket.AF_INET6) + struct.pack(
                "!HI16s", port, flow, socket.inet_pton(socket.AF_INET6, host)
            )
            raw += struct.pack("=I", scope)
        except (OSError, TypeError, struct.error):
            return None
    buffer = ctypes.create_string_buffer(raw, len(raw))
    return SockAddr(buffer=buffer, pointer=ctypes.addressof(buffer), length=len(raw))


class DatagramBatch:
    """Reusable arrays for `sendmmsg` calls of up to `capacity` datagrams each.

    Not thread-safe: one per thread (the mixer's loop keeps one).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if _sendmmsg is None:
            raise OSError("sendmmsg is not available in this libc")
        self.capacity = capacity
        self._slots = (ctypes.c_char * (SLOT_BYTES * capacity))()
        self._slot_view = memoryview(self._slots).cast("B")
        self._iovecs = (_IoVec * capacity)()
        self._iovec_view = memoryview(self._iovecs).cast("B")
        self._headers = (_MMsgHdr * capacity)()
        self._header_view = memoryview(self._headers).cast("B")
        self._headers_pointer = ctypes.addressof(self._headers)
        slots = ctypes.addressof(self._slots)
        for i in range(capacity):
            self._iovecs[i].iov_base = slots + i * SLOT_BYTES
            header = self._headers[i].msg_hdr
            header.msg_iov = ctypes.addressof(self._iovecs[i])
            header.msg_iovlen = 1

    def send(self, fd: int, datagrams: Sequence[bytes], addresses: Sequence[SockAddr]) -> int:
        """Send `datagrams[i]` to `addresses[i]` from socket `fd`, in order; how many went.

        Stops at the first datagram the kernel refuses (a full send buffer: EAGAIN): the
        rest are the caller's to queue or drop. Raises OSError only when not even the first
        one went. A datagram longer than `SLOT_BYTES` stops the batch there as well.
        """
        total = len(datagrams)
        done = 0
        while done < total:
            count = self._fill(datagrams, addresses, done, min(total, done + self.capacity))
            if count == 0:
                return done
            sent = _sendmmsg(fd, self._headers_pointer, count, 0)
            if sent < 0:
                error = ctypes.get_errno()
                if done:
                    return done
                raise OSError(error, os.strerror(error))
            done += sent
            if sent < count:
                return done
        return done

    def _fill(
        self, datagrams: Sequence[bytes], addresses: Sequence[SockAddr], start: int, end: int
    ) -> int:
        slots, iovecs, headers = self._slot_view, self._iovec_view, self._header_view
        pack_length, pack_name = _LENGTH.pack_into, _NAME.pack_into
        for i in range(end - start):
            datagram, address = datagrams[start + i], addresses[start + i]
            size = len(datagram)
            if size > SLOT_BYTES:
                return i
            offset = i * SLOT_BYTES
            slots[offset : offset + size] = datagram
            pack_length(iovecs, i * _IOVEC_SIZE + _IOV_LEN_OFFSET, size)
            pack_name(headers, i * _MMSGHDR_SIZE + _NAME_OFFSET, address.pointer, address.length)
        return end - start
