"""More live traffic through the translator (tools/lab): a smaller MTU on the IPv4
side, fragmented UDP both ways, and a worker killed mid-transfer. (The 50 MB
transfers both ways are test_end_to_end.py's, TRANSFER_BYTES.)

The lab fixture and the small programs come from test_end_to_end.py: each test
builds its own lab with a unique namespace prefix, and the namespaces and every
process in them are removed afterwards, whatever happened. Every command has a
timeout of seconds."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_end_to_end import (N4, N4_VIA_POOL6, N6, OWN4, TCP_CLIENT, TCP_SERVER,  # noqa: F401
                             TRANSFER_BYTES, finish, lab, need, payload, py, wait_ready)

MIN_RATE = 2 * 1024 * 1024              # bytes per second the timeouts allow for


def _timeout(size):
    return 20 + size / MIN_RATE


def stats(lab):
    """The translator's non-zero counters, for the failure messages."""
    result = lab.jool("stats", "display", timeout=10)
    return (result.stdout or result.stderr).strip()


def transfer(lab, tmp_path, size, server_node, bind, port, client_node, target, peer_seen):
    """One TCP connection, `size` bytes each way: the client sends its file, the
    server hashes it and answers with its own; every SHA-256 must match."""
    up, up_sum = payload(tmp_path, "up.bin", size)
    down, down_sum = payload(tmp_path, "down.bin", size)
    limit = _timeout(size)
    server = lab.spawn(server_node, sys.executable, "-c", TCP_SERVER, bind, port, down, limit,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_ready(server)
    started = time.monotonic()
    result = lab.exec(client_node, sys.executable, "-c", TCP_CLIENT, target, port, up, limit,
                      timeout=limit + 5)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (f"client: exit {result.returncode}",
                                    result.stderr[-2000:], stats(lab))
    got = json.loads(result.stdout.strip().splitlines()[-1])
    seen = finish(server, 10)
    assert seen["received"] == size and seen["sha256"] == up_sum, (seen, stats(lab))
    assert got["received"] == size and got["sha256"] == down_sum, (got, stats(lab))
    assert seen["peer"] == peer_seen
    print(f"{size * 2 / elapsed / 1e6:.1f} MB/s ({size >> 20} MiB each way in {elapsed:.1f} s)")


# -- 2. a smaller MTU on the IPv4 side ----------------------------------------------------------

def test_tcp_transfer_with_smaller_ipv4_mtu(lab, tmp_path):
    # Both ends of the IPv4 link at 1400. n4 still advertises an MSS of 1460 (advmss
    # on its route; otherwise its SYN-ACK alone would keep n6's segments small enough
    # and the smaller MTU would never matter), so n6 sends 1440-byte segments: IPv6
    # packets of 1500 bytes, 1480 once translated, too big for to_client_v4. The
    # translator either answers ICMPv6 Packet Too Big (from an ICMPv4 Frag Needed's
    # worth of MTU, 1400 + 20) or splits the segments itself; either way the transfer
    # completes intact. (The workers read the interfaces' MTUs once a second.)
    lab.exec("jool", "ip", "link", "set", "to_client_v4", "mtu", "1400", check=True)
    lab.exec("n4", "ip", "link", "set", "to_jool_v4", "mtu", "1400", check=True)
    lab.exec("n4", "ip", "route", "change", "192.0.2.0/24", "dev", "to_jool_v4", "proto",
             "kernel", "scope", "link", "src", N4, "advmss", "1460", check=True)
    time.sleep(1.2)
    transfer(lab, tmp_path, TRANSFER_BYTES, "n4", N4, 5002, "n6", N4_VIA_POOL6,
             peer_seen=OWN4)
    route = lab.exec("n6", "ip", "-6", "route", "get", N4_VIA_POOL6, timeout=5).stdout
    print(f"n6: {route.strip()}\ntranslator:\n{stats(lab)}")


# -- 3. fragmented UDP both ways ----------------------------------------------------------------

UDP_RECEIVER = r"""
import hashlib, json, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
addr, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((addr, port)); s.settimeout(timeout)
print("ready", flush=True)
got = []
try:
    while len(got) < count:
        d, peer = s.recvfrom(65535)
        got.append({"len": len(d), "sha256": hashlib.sha256(d).hexdigest(),
                    "from": [peer[0], peer[1]]})
except socket.timeout:
    pass
print(json.dumps({"got": got}), flush=True)
"""

UDP_SENDER = r"""
import hashlib, json, os, socket, sys, time
addr, port, sport, size, count = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                  int(sys.argv[4]), int(sys.argv[5]))
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
if sport:
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", sport))
if family == socket.AF_INET:
    # Let the kernel fragment (no DF), as an application sending big datagrams would.
    s.setsockopt(socket.IPPROTO_IP, 10, 0)          # IP_MTU_DISCOVER = IP_PMTUDISC_DONT
sums = []
for i in range(count):
    d = os.urandom(size)
    sums.append(hashlib.sha256(d).hexdigest())
    s.sendto(d, (addr, port))
    time.sleep(0.05)
print(json.dumps({"sent": sums}), flush=True)
"""

UDP_DATAGRAM = 4000
UDP_COUNT = 5


def _udp_fragmented(lab, rx_node, rx_bind, rx_port, tx_node, target, sport, expect_from):
    receiver = lab.spawn(rx_node, sys.executable, "-c", UDP_RECEIVER, rx_bind, rx_port,
                         UDP_COUNT, 4, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    wait_ready(receiver)
    sent = py(lab, tx_node, UDP_SENDER, target, rx_port, sport, UDP_DATAGRAM, UDP_COUNT,
              timeout=15)
    got = finish(receiver, 10)["got"]
    counters = stats(lab)
    assert len(got) == UDP_COUNT, (f"{len(got)} of {UDP_COUNT} datagrams arrived", counters)
    assert all(g["len"] == UDP_DATAGRAM for g in got), (got, counters)
    assert [g["sha256"] for g in got] == sent["sent"], counters
    assert {tuple(g["from"]) for g in got} == {expect_from}, got
    print(f"translator:\n{counters}")


def test_udp_4000_bytes_fragmented_ipv4_to_ipv6(lab):
    # Static BIB: UDP 192.0.2.2#2000 = 2001:db8::5#2000. n4 sends 4000-byte datagrams
    # from port 7100, which the kernel splits into 1500-byte IPv4 fragments; n6 gets
    # them whole (as IPv6 fragments its kernel reassembles).
    _udp_fragmented(lab, "n6", N6, 2000, "n4", OWN4, 7100,
                    expect_from=(N4_VIA_POOL6, 7100))


def test_udp_4000_bytes_fragmented_ipv6_to_ipv4(lab):
    # n6 sends 4000-byte datagrams from port 2000 (static BIB: 192.0.2.2#2000); its
    # kernel sends IPv6 fragments, which the translator has to reassemble (or translate
    # fragment by fragment) for n4 to get them whole.
    _udp_fragmented(lab, "n4", N4, 7101, "n6", N4_VIA_POOL6, 2000,
                    expect_from=(OWN4, 2000))


# -- 4. a worker killed during iperf3 -----------------------------------------------------------

def _control_pid(lab):
    registry = Path(lab.jool_cmd_env().get("JOOL_REGISTRY_DIR")
                    or "/run/jool-userspace/instances")
    return json.loads((registry / f"{lab.inode('jool')}.json").read_text())["pid"]


def _children(pid):
    """{pid: command line} of a process's children (`ps --ppid`)."""
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True,
                         text=True, timeout=5).stdout
    rows = {}
    for child in map(int, out.split()):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue                    # gone meanwhile
        rows[child] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return rows


def _worker_pids(control):
    # Workers run spawn_main; the spawn context's resource tracker is a child as well.
    return {p for p, args in _children(control).items() if "spawn_main" in args}


def _cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def test_worker_killed_during_iperf3_is_restarted(lab):
    need("iperf3", "ps")
    control = _control_pid(lab)
    workers = _worker_pids(control)
    assert workers, f"control process {control} has no workers: {_children(control)}"
    lab.spawn("n4", "iperf3", "-s", "-1", "-B", N4, "-p", "5201")
    deadline = time.monotonic() + 5
    while ":5201" not in lab.exec("n4", "ss", "-ltn", timeout=5).stdout:
        assert time.monotonic() < deadline, "iperf3 server did not listen"
        time.sleep(0.1)
    client = lab.spawn("n6", "iperf3", "-c", N4_VIA_POOL6, "-p", "5201", "-t", "6", "-J",
                       "--connect-timeout", "3000", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    before = {pid: _cpu_ticks(pid) for pid in workers}
    time.sleep(2.0)                     # well into the transfer
    assert client.poll() is None, client.communicate()
    # The busiest worker is the one the data connection's packets go to.
    victim = max(workers, key=lambda pid: _cpu_ticks(pid) - before[pid])
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    new = set()
    while time.monotonic() - killed_at < 2.5:
        new = _worker_pids(control) - workers
        if new:
            break
        time.sleep(0.05)
    restart_s = time.monotonic() - killed_at
    assert new, (f"no new worker within 2.5 s of killing {victim}: {_children(control)}",
                 stats(lab))
    try:
        out, err = client.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate(timeout=5)
    assert client.returncode == 0, (client.returncode, out[-2000:], err, stats(lab))
    report = json.loads(out)
    assert report["end"]["sum_received"]["bytes"] > 0, report["end"]
    # Both of iperf3's connections (control and data) to 192.0.2.5#5201.
    sessions = lab.jool("session", "display", "--tcp", "--numeric", timeout=10)
    assert sessions.returncode == 0, sessions.stderr
    rows = [line for line in sessions.stdout.splitlines() if "192.0.2.5#5201" in line]
    assert len(rows) >= 2, sessions.stdout
    print(f"worker {victim} replaced by {sorted(new)} in {restart_s:.2f} s; "
          f"{report['end']['sum_received']['bits_per_second'] / 1e6:.0f} Mbit/s")
