"""Session synchronization between two translators in namespaces (tools/halab):
J translates, K receives J's sessions through both joolds (issue 6)."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from netns_support import ROOT, UDP_ECHO4, jool_counter, load_tool

from jool._fast.tables import Tables

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2")


def load_halab():
    return load_tool("halab")


# n6 opens UDP sessions: SOURCES source ports x DESTS destination ports, one
# packet each, through a raw socket (no socket per port), paced.
SESSION_MAKER = r"""
import socket, struct, sys, time
sys.path.insert(0, sys.argv[1])
import pktlib as pl
first, sources, dests = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
for sport in range(first, first + sources):
    for dport in range(1000, 1000 + dests):
        pkt = pl.ipv6("2001:db8::5", "64:ff9b::c000:205", pl.udp(sport, dport, payload=b"s"))
        s.sendto(pkt, ("64:ff9b::c000:205", 0))
        sent += 1
        if sent % 200 == 0:
            time.sleep(0.004)
print(sent)
"""


def make_sessions(ha, first, sources, dests):
    result = ha.exec("n6", sys.executable, "-c", SESSION_MAKER, str(ROOT / "tests"),
                     first, sources, dests, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def stat(ha, node, name):
    return jool_counter(lambda *args: ha.jool(node, *args), name)


def wait_for(predicate, seconds, step=0.1):
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def without_expiry(lines):
    """CSV rows with the "Expires in" column cut out, and the expiries in ms."""
    rows, expiries = [], {}
    for line in lines[1:]:
        cells = line.split(",")
        h, m, s = cells[9].split(":")
        key = ",".join(cells[:9] + cells[10:])
        rows.append(key)
        expiries[key] = (int(h) * 3600 + int(m) * 60 + float(s)) * 1000
    return sorted(rows), expiries


@pytest.fixture
def ha(tmp_path):
    halab = load_halab()
    lab = halab.HaLab(jool_env={"JOOL_REGISTRY_DIR": str(tmp_path / "registry"),
                                "JOOL_TABLE_CAPACITY": "65536"})
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def test_ten_thousand_sessions_reach_k_field_for_field(ha):
    for node in ("j", "k"):
        ha.start_translator(node)
        ha.start_joold(node)
    ha.assign("j")
    assert wait_for(lambda: stat(ha, "k", "JSTAT_SESSIONS") == 0, 5)
    made = make_sessions(ha, 20000, 1000, 10)
    done = time.monotonic()
    assert made == 10000
    deadline = 2.0 + 1.0                                # ss-flush-deadline + 1 s
    reached = wait_for(lambda: stat(ha, "k", "JSTAT_SESSIONS") >= 10000, deadline, 0.05)
    took = time.monotonic() - done
    if not reached:
        names = ("JSTAT_SESSIONS", "JOOL_DP_RX_DROPPED", "JOOL_SS_QUEUED", "JOOL_SS_SENT",
                 "JOOL_SS_SEND_ERRORS",
                 "JOOL_SS_RECEIVED", "JOOL_SS_INSTALLED", "JOOL_SS_LOST_DATAGRAMS")
        pytest.fail(f"after {took:.1f} s: " + "; ".join(
            f"{node}: " + ", ".join(f"{n}={stat(ha, node, n)}" for n in names) for node in "jk"))
    j_rows, j_exp = without_expiry(ha.sessions_csv("j", "udp"))
    k_rows, k_exp = without_expiry(ha.sessions_csv("k", "udp"))
    assert len(j_rows) == 10000
    assert (sorted(set(j_rows) - set(k_rows)), sorted(set(k_rows) - set(j_rows))) == ([], [])
    # K counts expiry from reception: within the time the sync and displays took.
    assert max(abs(j_exp[r] - k_exp[r]) for r in j_rows) < 5000
    assert stat(ha, "k", "JOOL_SS_INSTALLED") == 10000
    for node, name in (("j", "JOOL_SS_SEND_ERRORS"), ("k", "JOOL_SS_REJECTED"),
                       ("k", "JOOL_SS_DROPPED"), ("k", "JOOL_SS_LOST_DATAGRAMS")):
        assert stat(ha, node, name) == 0, name
    assert stat(ha, "j", "JOOL_SS_SENT") >= 10000
    # K does not echo what it learnt: J received nothing.
    assert stat(ha, "j", "JOOL_SS_RECEIVED") == 0


def test_a_late_k_gets_the_table_through_advertise(ha):
    ha.start_translator("j")
    ha.start_joold("j")
    ha.assign("j")
    assert make_sessions(ha, 30000, 300, 2) == 600
    assert wait_for(lambda: stat(ha, "j", "JOOL_SS_SENT") >= 600, 5)
    ha.start_translator("k")
    ha.start_joold("k")
    time.sleep(1.0)
    assert stat(ha, "k", "JSTAT_SESSIONS") == 0          # what was sent before is gone
    result = ha.jool("j", "joold", "advertise")
    assert result.returncode == 0, result.stderr
    assert wait_for(lambda: stat(ha, "k", "JSTAT_SESSIONS") == 600, 5)
    assert sorted(without_expiry(ha.sessions_csv("k", "udp"))[0]) == \
        sorted(without_expiry(ha.sessions_csv("j", "udp"))[0])


def test_advertise_refused_when_sync_is_off(ha):
    result = ha.jool("j", "instance", "add", "--pool6", "64:ff9b::/96")
    assert result.returncode == 0
    result = ha.jool("j", "joold", "advertise")
    assert result.returncode == 22


# ------------------------------------------------------------ failover (keepalived)

SINK = r"""
import hashlib, socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("192.0.2.5", 5001)); srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
h = hashlib.sha256()
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    h.update(data)
conn.sendall(h.hexdigest().encode()); conn.close()
"""

SENDER = r"""
import hashlib, random, socket, sys, time
total, rate = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(("64:ff9b::c000:205", 5001), timeout=60)
rng = random.Random(64); h = hashlib.sha256(); sent = 0; start = time.monotonic()
while sent < total:
    chunk = rng.randbytes(min(32768, total - sent))
    s.sendall(chunk); h.update(chunk); sent += len(chunk)
    ahead = start + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
s.shutdown(socket.SHUT_WR)
remote = s.recv(100).decode()
print(h.hexdigest(), remote)
"""

PINGER6 = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("2001:db8::5", 7008))
s.settimeout(0.05)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    s.sendto(str(time.monotonic()).encode(), ("64:ff9b::c000:205", 7007))
    try:
        data = s.recv(100)
        print(data.decode(), flush=True)
    except socket.timeout:
        pass
    time.sleep(0.05)
"""


def has_address(ha, node, address):
    return address in ha.exec(node, "ip", "addr", "show").stdout


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="needs keepalived")
def test_failover_keeps_tcp_and_udp_flows(ha):
    for node in ("j", "k"):
        ha.start_translator(node)
        ha.start_joold(node)
    check = ha.workdir / "translator-alive.sh"
    check.write_text("#!/bin/sh\nexec env " + " ".join(
        f"{k}={v}" for k, v in ha.env().items() if k.startswith(("PYTHON", "JOOL"))) +
        f" {sys.executable} -m jool.cli.jool stats display >/dev/null 2>&1\n")
    check.chmod(0o755)
    ha.start_keepalived("j", 150, check)
    assert wait_for(lambda: has_address(ha, "j", "192.0.2.2/24"), 15), "J never became master"
    ha.start_keepalived("k", 100, check)
    time.sleep(2)
    assert not has_address(ha, "k", "192.0.2.2/24")
    sink = ha.spawn("n4", sys.executable, "-c", SINK, stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    ha.spawn("n4", sys.executable, "-c", UDP_ECHO4)
    pinger = ha.spawn("n6", sys.executable, "-c", PINGER6, "25", stdout=subprocess.PIPE,
                      text=True)
    sender = ha.spawn("n6", sys.executable, "-c", SENDER, 24_000_000, 2_000_000,
                      stdout=subprocess.PIPE, text=True)
    time.sleep(4)                                       # mid-transfer
    assert stat(ha, "k", "JOOL_SS_INSTALLED") >= 2      # the TCP and UDP sessions
    keepalived_j = [p for p in ha.procs if p.args[-1].endswith("vrrp-j.pid") or
                    "keepalived-j.conf" in " ".join(map(str, p.args))]
    doomed = [pid for pid in ha.translator_pids("j")
              if pid not in {p.pid for p in keepalived_j}
              and b"keepalived" not in open(f"/proc/{pid}/cmdline", "rb").read()]
    failed_at = time.monotonic()
    for pid in doomed:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    for address, dev in (("192.0.2.2/24", "v4"), ("2001:db8::1/96", "v6")):
        ha.exec("j", "ip", "addr", "del", address, "dev", dev)
    assert wait_for(lambda: has_address(ha, "k", "192.0.2.2/24"), 15), "K never took over"
    out, _ = sender.communicate(timeout=90)
    assert sender.returncode == 0, out
    local, remote = out.split()
    assert local == remote                              # complete, no reset
    replies = pinger.communicate(timeout=60)[0].split()
    after = [float(r) for r in replies if float(r) > failed_at]
    assert after, "the UDP flow did not resume through K"
    assert stat(ha, "k", "JSTAT_SESSIONS") >= 2


# ------------------------------------------------------------ load (tools/sync-load)

def test_two_hundred_thousand_sessions_a_second_for_ten_seconds(tmp_path, capsys):
    halab = load_halab()
    lab = halab.HaLab(jool_env={"JOOL_REGISTRY_DIR": str(tmp_path / "registry"),
                                "JOOL_TABLE_CAPACITY": str(2_200_000)})
    lab.up()
    try:
        for node in ("j", "k"):
            lab.start_translator(node)
            lab.start_joold(node)
        figures = load_tool("sync-load").run(lab, rate=200_000, seconds=10.0, settle=60.0)
        tables = figures.pop("tables")
        try:
            assert figures["created"] == 2_000_000
            assert figures["k_sessions"] == 2_000_000, figures
            assert figures["k"]["JOOL_SS_INSTALLED"] == 2_000_000
            for name in ("JOOL_SS_REJECTED", "JOOL_SS_DROPPED", "JOOL_SS_LOST_DATAGRAMS"):
                assert figures["k"][name] == 0, name
            for name in ("JOOL_SS_SEND_ERRORS", "JOOL_SS_DISCARDED"):
                assert figures["j"][name] == 0, name
            # Spot checks: sessions of the first, a middle and the last batch are
            # on K with J's mapping.
            k_tables = Tables.attach(load_tool("sync-load").tables_of(lab.inodes["k"]))
            try:
                for i in (0, 1_000_000, 1_999_999):
                    peer, sport = i // 2000, 1 + i % 2000
                    host = peer % 500
                    dst4 = f"198.51.100.{1 + host}" if host < 250 else f"203.0.113.{host - 249}"
                    dport = 1000 + peer // 500
                    on_j = tables.find_session("udp", "2001:db8::5", sport, dst4, dport)
                    on_k = k_tables.find_session("udp", "2001:db8::5", sport, dst4, dport)
                    assert on_j is not None and on_k is not None, i
                    assert (on_k["src4"], on_k["port4"]) == (on_j["src4"], on_j["port4"])
            finally:
                k_tables.close()
        finally:
            figures.pop("core", None)
            tables.close()
    finally:
        lab.down()
