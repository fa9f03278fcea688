"""Download an ``https://`` media URL without becoming a way into the server's network.

Every hop (the URL, then each redirect, at most ``MAX_REDIRECTS``) must be ``https://``, name
a host on the app's remote media list, and resolve only to public addresses: private,
loopback, link-local, shared, multicast and reserved ones are refused. The connection goes
to the address that was checked (no second lookup a DNS rebinding could answer differently),
with TLS verified against the host name. The download is bounded in size (refused as soon
as it passes the limit, or when Content-Length says it will) and in time (each read, and the
whole download).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings

from rooms.errors import ServiceError

MAX_REDIRECTS = 3
MAX_URL_CHARS = 2048
READ_BYTES = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(ServiceError):
    """A URL that was not fetched; ``code`` says why (docs/protocol.md)."""


@dataclass(frozen=True)
class Fetched:
    url: str  # the last hop's
    name: str  # the file name the URL's path ends with
    size: int


def fetch(url: str, *, allowed_hosts: list[str], dest: Path, max_bytes: int) -> Fetched:
    """Download ``url`` into ``dest``; raises ``FetchError`` (and leaves no ``dest``)."""
    deadline = time.monotonic() + settings.LIVEAUDIO_MEDIA_FETCH_SECONDS
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            response, connection = _open(url, allowed_hosts, deadline)
            try:
                if response.status in REDIRECTS:
                    url = urljoin(url, response.getheader("Location") or "")
                    continue
                if response.status != 200:
                    raise FetchError(
                        "media_fetch_failed", f"The media server answered {response.status}."
                    )
                size = _save(response, dest, max_bytes, deadline)
                return Fetched(url=url, name=file_name(url), size=size)
            finally:
                connection.close()
        raise FetchError("media_fetch_failed", "The URL redirects too many times.")
    except TimeoutError as exc:
        dest.unlink(missing_ok=True)
        raise FetchError("media_fetch_timeout", "The media server took too long.") from exc
    except (OSError, http.client.HTTPException) as exc:
        dest.unlink(missing_ok=True)
        raise FetchError(
            "media_fetch_failed", "The media server could not be reached or did not answer."
        ) from exc
    except FetchError:
        dest.unlink(missing_ok=True)
        raise


def check_url(url: str, allowed_hosts: list[str]) -> tuple[str, int]:
    """The host and port of an acceptable URL, before any lookup; raises ``FetchError``."""
    if len(url) > MAX_URL_CHARS:
        raise FetchError("media_bad_url", f"The URL is longer than {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise FetchError("media_bad_url", "This is not a valid URL.") from exc
    if parts.scheme != "https":
        raise FetchError("media_bad_url", "Only https:// URLs can be played.")
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        raise FetchError("media_bad_url", "The URL must name a host (and no user name).")
    if not host_allowed(host, port, allowed_hosts):
        raise FetchError("media_host_not_allowed", f"This app does not allow media from {host}.")
    return host, port


def host_allowed(host: str, port: int, allowed: list[str]) -> bool:
    """An entry is ``host``, ``host:port`` or ``*.domain`` (its subdomains); port 443 unless
    the entry names one."""
    for entry in allowed:
        name, _, entry_port = entry.partition(":")
        if (int(entry_port) if entry_port.isdigit() else 443) != port:
            continue
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def public_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to, in order: every one the name resolves to must be public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError("media_fetch_failed", f"{host} does not resolve.") from exc
    addresses = [str(info[4][0]) for info in infos]
    refused = [a for a in addresses if not _is_public(ipaddress.ip_address(a))]
    if refused or not addresses:
        raise FetchError(
            "media_address_refused", f"{host} resolves to an address that may not be fetched."
        )
    return addresses


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback and settings.LIVEAUDIO_MEDIA_FETCH_ALLOW_LOOPBACK:
        return True  # tests only: their own HTTPS server (docs/operations.md)
    return address.is_global and not address.is_multicast


def file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "media"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with SNI and certificate checks for the host name."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self._addresses = addresses

    def connect(self) -> None:
        raw = _first_connection(self._addresses, self.port, self.timeout)
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(raw, server_hostname=self.host)


def _first_connection(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """The checked addresses in turn (a name may have an IPv6 and an IPv4 one)."""
    failure: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except TimeoutError:
            raise
        except OSError as exc:
            failure = exc
    raise failure


def _tls_context() -> ssl.SSLContext:
    ca_file = settings.LIVEAUDIO_MEDIA_FETCH_CA_FILE or None  # tests: their own CA
    return ssl.create_default_context(cafile=ca_file)


def _open(
    url: str, allowed_hosts: list[str], deadline: float
) -> tuple[http.client.HTTPResponse, _PinnedHTTPSConnection]:
    host, port = check_url(url, allowed_hosts)
    addresses = public_addresses(host, port)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _PinnedHTTPSConnection(host, port, addresses, _remaining(deadline))
    try:
        connection.request(
            "GET", target, headers={"User-Agent": "liveaudio", "Accept": "audio/*, video/*, */*"}
        )
        return connection.getresponse(), connection
    except BaseException:
        connection.close()
        raise


def _save(response: http.client.HTTPResponse, dest: Path, max_bytes: int, deadline: float) -> int:
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise FetchError("media_too_large", f"The file is larger than {max_bytes} bytes.")
    received = 0
    with dest.open("wb") as out:
        while True:
            _remaining(deadline)  # each read waits at most the read timeout; all of them this
            chunk = response.read(READ_BYTES)
            if not chunk:
                return received
            received += len(chunk)
            if received > max_bytes:
                raise FetchError("media_too_large", f"The file is larger than {max_bytes} bytes.")
            out.write(chunk)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the fetch's deadline passed")
    return min(left, settings.LIVEAUDIO_MEDIA_FETCH_READ_SECONDS)
