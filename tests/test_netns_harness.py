"""The multi-host harness itself (tests/netns.py): hosts reach the forwarded services and
each other, and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests import netns
from tests.netns import Hosts

# A fixture taken in by assignment, not import, so ruff does not read the test's argument as
# a redefinition.
netns_hosts = netns.netns_hosts

SERVICES = """
import json, sys
import psycopg, redis

key = sys.argv[1]
client = redis.Redis.from_url(sys.argv[2], socket_timeout=5)
client.set(key, "from " + sys.argv[4], ex=60)
got = client.get(key).decode()
client.delete(key)
with psycopg.connect(sys.argv[3], connect_timeout=5) as conn:
    database, peer = conn.execute("select current_database(), inet_client_addr()").fetchone()
print(json.dumps({"redis": got, "database": database, "peer": str(peer)}))
"""

UDP_ECHO = """
import socket, sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 0))
sock.settimeout(5)
print(sock.getsockname()[1], flush=True)
data, peer = sock.recvfrom(1024)
sock.sendto(data.upper(), peer)
print(data.decode(), peer[0], flush=True)
"""

# The first datagram may be queued behind ARP on a fresh bridge: resend until answered.
UDP_ASK = """
import socket, sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)
for _ in range(25):
    sock.sendto(b"hello b", (sys.argv[1], int(sys.argv[2])))
    try:
        print(sock.recvfrom(1024)[0].decode())
        break
    except TimeoutError:
        pass
"""

CONNECT = """
import errno, json, socket, sys

results = {}
timeout = float(sys.argv[1])
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        results[target] = "connected"
    except TimeoutError:
        results[target] = "timeout"
    except OSError as error:
        results[target] = errno.errorcode.get(error.errno, str(error))
print(json.dumps(results))
"""


def python_in(host: netns.Host, script: str, *args: str) -> str:
    done = host.run([sys.executable, "-c", script, *args], timeout=15)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("netns_hosts", [2], indirect=True)
def test_a_host_reaches_redis_and_postgres_through_the_hub(netns_hosts: Hosts) -> None:
    a = netns_hosts[0]
    key = f"netns-harness-{uuid.uuid4()}"
    out = python_in(a, SERVICES, key, netns_hosts.redis_url, netns_hosts.postgres_url(), a.name)
    # The services see the forwarder's loopback connection, not the host's address.
    assert json.loads(out) == {"redis": f"from {a.name}", "database": "test", "peer": "127.0.0.1"}


@pytest.mark.parametrize("netns_hosts", [2], indirect=True)
def test_udp_goes_from_one_host_to_another_and_back(netns_hosts: Hosts) -> None:
    a, b = netns_hosts
    echo = b.popen([sys.executable, "-c", UDP_ECHO, b.address], stdout=subprocess.PIPE, text=True)
    assert echo.stdout is not None
    port = echo.stdout.readline().strip()
    assert port, "the echo in host B did not start"
    assert python_in(a, UDP_ASK, b.address, port).strip() == "HELLO B"
    heard, _ = echo.communicate(timeout=10)
    assert heard.strip() == f"hello b {a.address}"


@pytest.mark.parametrize("netns_hosts", [2], indirect=True)
def test_a_host_sees_neither_the_machines_loopback_nor_the_outside(netns_hosts: Hosts) -> None:
    a = netns_hosts[0]
    # 203.0.113.1 (TEST-NET-3) has no route from a host: refused before any packet leaves.
    targets = ["127.0.0.1:6379", "127.0.0.1:5432", f"{netns_hosts.address}:3306", "203.0.113.1:80"]
    assert json.loads(python_in(a, CONNECT, "2", *targets)) == {
        "127.0.0.1:6379": "ECONNREFUSED",
        "127.0.0.1:5432": "ECONNREFUSED",
        f"{netns_hosts.address}:3306": "ECONNREFUSED",
        "203.0.113.1:80": "ENETUNREACH",
    }


def test_a_killed_host_loses_its_processes_and_a_cut_one_its_link(netns_hosts: Hosts) -> None:
    a, b, c = netns_hosts
    sleeper = b.popen(["sleep", "60"])
    b.kill()
    assert sleeper.returncode == -9 and b.pids() == []

    redis_port = f"{netns_hosts.redis.host}:{netns_hosts.redis.port}"
    c.cut()
    assert json.loads(python_in(c, CONNECT, "0.5", redis_port)) == {redis_port: "timeout"}
    assert json.loads(python_in(a, CONNECT, "2", redis_port)) == {redis_port: "connected"}
    c.reconnect()
    assert json.loads(python_in(c, CONNECT, "2", redis_port)) == {redis_port: "connected"}


def namespaces() -> set[str]:
    return {line.split()[0] for line in netns.ip("netns", "list").splitlines() if line.strip()}


def test_closing_leaves_no_namespace_behind() -> None:
    with Hosts(count=2) as hosts:
        names = {host.name for host in hosts} | {hosts.hub}
        assert names <= namespaces()
        hosts[0].popen(["sleep", "60"])
    assert not names & namespaces()


def test_a_start_that_fails_half_way_leaves_nothing_behind(monkeypatch) -> None:
    plug_in = Hosts._plug_in

    def plug_in_one_then_fail(self: Hosts, host: netns.Host) -> None:
        if host is self.hosts[1]:
            raise RuntimeError("the second veth could not be made")
        plug_in(self, host)

    monkeypatch.setattr(Hosts, "_plug_in", plug_in_one_then_fail)
    hosts = Hosts(count=2)
    with pytest.raises(RuntimeError, match="second veth"), hosts:
        pass
    assert not ({host.name for host in hosts} | {hosts.hub}) & namespaces()
