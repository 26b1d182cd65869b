"""Live traffic through the translator in the Jool test topology (tools/lab).

Each test builds its own lab (unique namespace prefix), starts the translator in it
with `jool` commands (pool6 64:ff9b::/96, pool4 192.0.2.2 1-3000 for TCP, UDP and
ICMP, the graybox static BIB), and removes namespaces and processes afterwards,
whatever happened. Every command has a timeout of seconds."""

import hashlib
import json
import os
import re
import secrets
import select
import shutil
import sys
import time
from pathlib import Path

import pytest

from netns_support import load_lab

ROOT = Path(__file__).resolve().parents[2]

TRANSFER_BYTES = 50 * 1024 * 1024       # each way; about a second at the speeds seen
TRANSFER_TIMEOUT = 20 + TRANSFER_BYTES / (2 * 1024 * 1024)    # seconds, >= 2 MB/s
N6, N4, OWN4 = "2001:db8::5", "192.0.2.5", "192.0.2.2"
N4_VIA_POOL6 = "64:ff9b::c000:205"      # 64:ff9b::192.0.2.5
OWN4_VIA_POOL6 = "64:ff9b::c000:202"    # 64:ff9b::192.0.2.2


def need(*commands):
    """Debian packages: iproute2 (ip, ss), nftables, iputils-ping, traceroute, iperf3."""
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        pytest.skip(f"missing commands: {' '.join(missing)} (tools/demo installs them)")


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    need("ip", "ss")
    lab_mod = load_lab()
    lab = lab_mod.Lab(prefix=f"e2e{secrets.token_hex(3)}-")
    lab.up()
    try:
        lab.start_translator(timeout=20)
        yield lab
    finally:
        lab.down()
        left = [n for n in os.listdir("/run/netns") if n.startswith(lab.prefix)]
        assert not left, f"namespaces left behind: {left}"


# -- small programs run inside the namespaces -------------------------------------------

TCP_SERVER = r"""
import hashlib, json, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
addr, port, reply, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(1); s.settimeout(timeout)
print("ready", flush=True)
c, peer = s.accept(); c.settimeout(timeout)
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    h.update(d); n += len(d)
with open(reply, "rb") as f:
    c.sendall(f.read())
c.shutdown(socket.SHUT_WR)
c.close()
print(json.dumps({"received": n, "sha256": h.hexdigest(), "peer": peer[0]}), flush=True)
"""

TCP_CLIENT = r"""
import hashlib, json, socket, sys
addr, port, data, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
c = socket.create_connection((addr, port), timeout=timeout)
with open(data, "rb") as f:
    c.sendall(f.read())
c.shutdown(socket.SHUT_WR)
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    h.update(d); n += len(d)
print(json.dumps({"received": n, "sha256": h.hexdigest()}), flush=True)
"""

UDP_ECHO = r"""
import json, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
addr, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((addr, port)); s.settimeout(timeout)
print("ready", flush=True)
peers = []
try:
    while len(peers) < count:
        d, peer = s.recvfrom(65535)
        s.sendto(d, peer)
        peers.append([peer[0], peer[1]])
except socket.timeout:
    pass
print(json.dumps({"peers": peers}), flush=True)
"""

UDP_CLIENT = r"""
import json, os, socket, sys
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(1.0)
answers = []
for i in range(count):
    msg = b"%d:" % i + os.urandom(32 + 37 * i)
    for attempt in range(3):
        s.sendto(msg, (addr, port))
        try:
            d, peer = s.recvfrom(65535)
        except socket.timeout:
            continue
        answers.append({"ok": d == msg, "from": [peer[0], peer[1]]})
        break
    else:
        answers.append({"ok": False, "from": None})
print(json.dumps({"answers": answers}), flush=True)
"""


def wait_ready(proc, seconds=5.0):
    """The server prints "ready" once it listens."""
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    if not ready:
        raise AssertionError(f"server {proc.args[-5:]} did not start in {seconds:g} s")
    line = proc.stdout.readline().strip()
    assert line == "ready", line


def finish(proc, seconds):
    """The JSON line a server prints last (killed after `seconds`)."""
    try:
        out, err = proc.communicate(timeout=seconds)
    except Exception:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        raise AssertionError(f"server did not finish in {seconds:g} s: {err}") from None
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def py(lab, node, script, *args, timeout):
    result = lab.exec(node, sys.executable, "-c", script, *args, timeout=timeout)
    assert result.returncode == 0, (f"{node}: exit {result.returncode}", result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def payload(tmp_path, name, size):
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def tcp_transfer(lab, tmp_path, server_node, bind, port, client_node, target, peer_seen):
    """Both directions on one connection: the client sends a file, the server
    hashes it and then sends its own; both hashes must match the originals."""
    up, up_sum = payload(tmp_path, "up.bin", TRANSFER_BYTES)
    down, down_sum = payload(tmp_path, "down.bin", TRANSFER_BYTES)
    server = lab.spawn(server_node, sys.executable, "-c", TCP_SERVER, bind, port, down,
                       TRANSFER_TIMEOUT, stdout=-1, stderr=-1, text=True)
    wait_ready(server)
    got = py(lab, client_node, TCP_CLIENT, target, port, up, TRANSFER_TIMEOUT,
             timeout=TRANSFER_TIMEOUT + 5)
    seen = finish(server, 10)
    assert seen["received"] == TRANSFER_BYTES and seen["sha256"] == up_sum
    assert got["received"] == TRANSFER_BYTES and got["sha256"] == down_sum
    assert seen["peer"] == peer_seen


# -- the tests ----------------------------------------------------------------------------

def test_ping6_through_the_translator(lab):
    need("ping")
    result = lab.exec("n6", "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2",
                      "64:ff9b::192.0.2.5", timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 3 received" in result.stdout, result.stdout
    assert f"from {N4_VIA_POOL6}" in result.stdout


def test_tcp_transfer_ipv6_initiated(lab, tmp_path):
    tcp_transfer(lab, tmp_path, "n4", N4, 5001, "n6", N4_VIA_POOL6, peer_seen=OWN4)


def test_tcp_transfer_ipv4_initiated_through_static_bib(lab, tmp_path):
    # Static BIB: TCP 192.0.2.2#2000 = 2001:db8::5#2000.
    tcp_transfer(lab, tmp_path, "n6", N6, 2000, "n4", OWN4, peer_seen=N4_VIA_POOL6)


def test_udp_round_trip(lab):
    count = 5
    server = lab.spawn("n4", sys.executable, "-c", UDP_ECHO, N4, 7000, count, 8,
                       stdout=-1, stderr=-1, text=True)
    wait_ready(server)
    got = py(lab, "n6", UDP_CLIENT, N4_VIA_POOL6, 7000, count, timeout=15)
    seen = finish(server, 10)
    assert all(a["ok"] for a in got["answers"]), got
    assert {tuple(a["from"]) for a in got["answers"]} == {(N4_VIA_POOL6, 7000)}
    assert {p[0] for p in seen["peers"]} == {OWN4}
    assert all(1 <= p[1] <= 3000 for p in seen["peers"]), seen   # a pool4 port


def test_hairpinning_to_own_static_bib_entry(lab):
    # Static BIB: UDP 192.0.2.2#2000 = 2001:db8::5#2000. n6 reaches its own service
    # through the IPv4 side: 64:ff9b::192.0.2.2#2000 comes back to 2001:db8::5#2000.
    count = 3
    server = lab.spawn("n6", sys.executable, "-c", UDP_ECHO, N6, 2000, count, 8,
                       stdout=-1, stderr=-1, text=True)
    wait_ready(server)
    got = py(lab, "n6", UDP_CLIENT, OWN4_VIA_POOL6, 2000, count, timeout=15)
    seen = finish(server, 10)
    assert all(a["ok"] for a in got["answers"]), got
    assert {tuple(a["from"]) for a in got["answers"]} == {(OWN4_VIA_POOL6, 2000)}
    # The server sees the client as an IPv4 host: the pool6 form of the pool4 address.
    assert {p[0] for p in seen["peers"]} == {OWN4_VIA_POOL6}, seen


def test_traceroute6_shows_translator_and_ipv4_hop(lab):
    need("traceroute6")
    # n4 routes 203.0.113.0/24 back to the translator, so a probe that reaches n4
    # with TTL 1 earns an ICMPv4 Time Exceeded from 192.0.2.5, which the translator
    # turns into ICMPv6 from 64:ff9b::192.0.2.5. A probe with hop limit 1 expires
    # at the translator itself.
    lab.exec("n4", "ip", "route", "add", "203.0.113.0/24", "via", OWN4, check=True)
    result = lab.exec("n6", "traceroute6", "-n", "-q", "1", "-w", "2", "-m", "2",
                      "64:ff9b::203.0.113.5", timeout=15)
    assert result.returncode == 0, result.stdout + result.stderr
    hops = {}
    for line in result.stdout.splitlines()[1:]:
        m = re.match(r"\s*(\d+)\s+(\S+)", line)
        if m:
            hops[int(m.group(1))] = m.group(2)
    assert hops.get(1) == "2001:db8::1", result.stdout
    assert hops.get(2) == N4_VIA_POOL6, result.stdout


def test_iperf3_tcp_run_completes(lab):
    need("iperf3")
    lab.spawn("n4", "iperf3", "-s", "-1", "-B", N4, "-p", "5201")
    deadline = time.monotonic() + 5
    while ":5201" not in lab.exec("n4", "ss", "-ltn", timeout=5).stdout:
        assert time.monotonic() < deadline, "iperf3 server did not listen"
        time.sleep(0.1)
    result = lab.exec("n6", "iperf3", "-c", N4_VIA_POOL6, "-p", "5201", "-t", "3", "-J",
                      "--connect-timeout", "3000", timeout=20)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr)
    report = json.loads(result.stdout)
    received = report["end"]["sum_received"]
    assert received["bytes"] > 0, received
    print(f"iperf3: {received['bits_per_second'] / 1e6:.0f} Mbit/s")
