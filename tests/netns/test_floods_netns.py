"""Floods and exhaustion (issue 8): a million SYNs from random IPv6 sources, and
pool4 running out of ports, while an established flow goes on through the
translator. Each test has its own lab (tools/lab)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netns_support import SHA_SINK, jool_counter, running_lab
from test_faults_netns import PACED_SOURCE, wait_until

N4 = "192.0.2.5"
N4_VIA_POOL6 = "64:ff9b::c000:205"
FLOOD_PORT = 9                  # n4 drops these at ingress (counted): nobody listens
CAPACITY = 262144               # the flood's lab: sessions the tables hold

# Writes COUNT TCP SYNs from random sources in 2001:db8:f100::/40 (random ports
# too) to DST6 port 9, as Ethernet frames on IFNAME at RATE frames per second.
# The frames and their checksums are made with numpy up front; it prints how many
# it sent and in how many seconds.
SYN_FLOOD = r"""
import socket, sys, time
import numpy as np
ifname, smac, dmac, dst6, count, rate = sys.argv[1:7]
count, rate = int(count), float(rate)
rng = np.random.default_rng(6146)
f = np.zeros((count, 74), np.uint8)
f[:, 0:6] = np.frombuffer(bytes.fromhex(dmac.replace(":", "")), np.uint8)
f[:, 6:12] = np.frombuffer(bytes.fromhex(smac.replace(":", "")), np.uint8)
f[:, 12:14] = (0x86, 0xDD)
f[:, 14] = 0x60                                   # IPv6
f[:, 19] = 20                                     # payload length: a bare TCP header
f[:, 20] = 6                                      # next header: TCP
f[:, 21] = 64                                     # hop limit
f[:, 22:27] = (0x20, 0x01, 0x0D, 0xB8, 0xF1)      # source 2001:db8:f1xx:...
f[:, 27:38] = rng.integers(0, 256, (count, 11), dtype=np.uint8)
f[:, 38:54] = np.frombuffer(socket.inet_pton(socket.AF_INET6, dst6), np.uint8)
sport = rng.integers(1024, 65536, count, dtype=np.uint32)
f[:, 54] = sport >> 8; f[:, 55] = sport & 0xFF
f[:, 57] = int(sys.argv[7]) if len(sys.argv) > 7 else 9     # destination port
f[:, 58:62] = rng.integers(0, 256, (count, 4), dtype=np.uint8)   # sequence
f[:, 66] = 0x50                                   # 5-word header
f[:, 67] = 0x02                                   # SYN
f[:, 68:70] = (0xFF, 0xFF)                        # window
# RFC 1071 over the pseudo-header (addresses, length 20, protocol 6) and header.
words = f[:, 22:74].astype(np.uint32)
acc = (words[:, 0::2] << 8 | words[:, 1::2]).sum(axis=1) + 20 + 6
while (acc >> 16).any():
    acc = (acc & 0xFFFF) + (acc >> 16)
csum = ~acc & 0xFFFF
f[:, 70] = csum >> 8; f[:, 71] = csum & 0xFF
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0x86DD))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
frames = memoryview(f.reshape(-1)); width = f.shape[1]
start = time.monotonic(); sent = 0
for i in range(count):
    try:
        s.send(frames[i * width:(i + 1) * width])
        sent += 1
    except (BlockingIOError, OSError):
        pass
    if i % 512 == 511:
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
print(sent, round(time.monotonic() - start, 3), flush=True)
"""


@pytest.fixture
def need_tools():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    for tool in ("ip", "ss", "nft", "iperf3"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")


def counter(lab, name):
    return jool_counter(lambda *a: lab.jool(*a, timeout=20), name)


def count_and_drop_at_n4(lab):
    lab.exec("n4", "nft", "-f", "-", check=True, input=(
        "table netdev flood {\n  chain in {\n"
        '    type filter hook ingress device "to_jool_v4" priority -500; policy accept;\n'
        f"    tcp dport {FLOOD_PORT} counter drop\n  }}\n}}\n"))


def dropped_at_n4(lab):
    out = lab.exec("n4", "nft", "list", "table", "netdev", "flood", timeout=10).stdout
    return int(re.search(r"counter packets (\d+)", out).group(1))


def flood(lab, count, rate, port=FLOOD_PORT):
    return lab.spawn("n6", sys.executable, "-c", SYN_FLOOD, "to_jool_v6",
                     lab.mac("n6", "to_jool_v6"), lab.mac("jool", "to_client_v6"),
                     N4_VIA_POOL6, str(count), str(rate), str(port),
                     stdout=subprocess.PIPE, text=True)


def anon_kib(pids):
    """Private (anonymous) resident memory of processes: what grows if something
    allocates per flow outside the fixed-size tables."""
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"RssAnon:\s+(\d+)", status).group(1))
    return total


def translator_pids(lab):
    registry = Path(lab.jool_cmd_env().get("JOOL_REGISTRY_DIR")
                    or "/run/jool-userspace/instances")
    entry = json.loads((registry / f"{lab.inode('jool')}.json").read_text())
    return [entry["pid"]] + [p for i in entry["instances"] for p in i["pool"]["workers"]]


def segment_bytes(lab):
    prefix = f"jool64-{lab.inode('jool')}-"
    return sum(os.path.getsize(f"/dev/shm/{n}") for n in os.listdir("/dev/shm")
               if n.startswith(prefix))


def test_a_million_syns_from_random_sources(need_tools):
    with running_lab("syn", jool_env={"JOOL_TABLE_CAPACITY": str(CAPACITY)}) as lab:
        # Room in pool4 beyond the table's capacity, so that the table is what fills.
        ok = lab.jool("pool4", "add", "--tcp", "198.51.100.0/28", "1024-65535", timeout=20)
        assert ok.returncode == 0, ok.stderr
        lab.exec("n4", "ip", "route", "add", "198.51.100.0/28", "via", "192.0.2.2",
                 check=True)
        count_and_drop_at_n4(lab)
        pids = translator_pids(lab)
        shm_before, anon_before = segment_bytes(lab), anon_kib(pids)

        # The established flow: iperf3 at a fixed rate, per-second reports.
        lab.spawn("n4", "iperf3", "-s", "-1", "-B", N4, "-p", "5201")
        assert wait_until(lambda: ":5201" in lab.exec("n4", "ss", "-ltn").stdout, 5)
        iperf = lab.spawn("n6", "iperf3", "-c", N4_VIA_POOL6, "-p", "5201", "-t", "24",
                          "-b", "400M", "-i", "1", "-J", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        time.sleep(6)
        flood_start = time.monotonic()
        flooder = flood(lab, 1_000_000, 80_000)
        sent, took = flooder.communicate(timeout=60)[0].split()
        flood_end = time.monotonic()
        report = json.loads(iperf.communicate(timeout=60)[0])
        assert iperf.returncode == 0, report.get("error")

        # Throughput per second before the flood (skipping the first, slow-start
        # second) and while it ran.
        begin = flood_start - 6
        rates = [(begin + i["sum"]["end"], i["sum"]["bits_per_second"])
                 for i in report["intervals"]]
        before = [r for t, r in rates[1:] if t <= flood_start]
        during = [r for t, r in rates if flood_start + 1 <= t <= flood_end]
        assert before and during, rates
        ratio = (sum(during) / len(during)) / (sum(before) / len(before))

        sessions = counter(lab, "JSTAT_SESSIONS")
        no_room = counter(lab, "JSTAT_ENOMEM")
        translated = dropped_at_n4(lab)
        print(f"flood: {sent} SYNs in {took} s; sessions {sessions}, ENOMEM {no_room}, "
              f"translated {translated}; established flow {ratio:.2f} of its throughput")
        assert int(sent) == 1_000_000
        assert sessions <= CAPACITY
        assert translated >= CAPACITY * 0.9             # the table did fill
        assert no_room >= 1_000_000 - CAPACITY - 1000   # the rest dropped and counted
        assert segment_bytes(lab) == shm_before         # the tables do not grow
        assert anon_kib(pids) - anon_before < 64 * 1024, (anon_before, anon_kib(pids))
        assert ratio >= 0.8, rates

        # The flood's sessions sit in V6_INIT on the transitory timer (4 minutes,
        # Jool's minimum); the timer pass removes them after that.
        flooded_at = flood_end
        assert wait_until(lambda: counter(lab, "JSTAT_SESSIONS") < 100,
                          240 + 30 - (time.monotonic() - flooded_at), step=5), \
            counter(lab, "JSTAT_SESSIONS")
        print(f"drained {time.monotonic() - flooded_at:.0f} s after the flood")


def test_pool4_exhaustion_refuses_new_flows_and_spares_old_ones(need_tools):
    with running_lab("exh") as lab:               # TCP pool4: 192.0.2.2 ports 1-3000
        count_and_drop_at_n4(lab)
        sink = lab.spawn("n4", sys.executable, "-c", SHA_SINK, N4, "5001",
                         stdout=subprocess.PIPE, text=True)
        assert sink.stdout.readline().strip() == "ready"
        source = lab.spawn("n6", sys.executable, "-c", PACED_SOURCE, N4_VIA_POOL6, "5001",
                           str(12 << 20), str(3 << 20), stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        refused_before = counter(lab, "JSTAT_BIB6_NOT_FOUND")
        flooder = flood(lab, 6000, 20_000)
        assert flooder.communicate(timeout=30)[0].split()[0] == "6000"
        time.sleep(0.5)
        bib = lab.jool("bib", "display", "--tcp", "--csv", "--no-headers", timeout=20)
        entries = len(bib.stdout.splitlines())
        refused = counter(lab, "JSTAT_BIB6_NOT_FOUND") - refused_before
        translated = dropped_at_n4(lab)
        print(f"pool4 exhausted: {entries} TCP BIB entries, {translated} SYNs through, "
              f"{refused} refused")
        assert entries <= 3000 and translated <= 3000
        assert refused >= 3000 - 100              # the transfer's and static entries
        # A new connection now gets nowhere (spec: dropped, no ICMP error)...
        attempt = lab.exec("n6", sys.executable, "-c",
                           "import socket\n"
                           "try:\n"
                           f"    socket.create_connection(('{N4_VIA_POOL6}', 5002), timeout=2)\n"
                           "except socket.timeout:\n"
                           "    print('timeout')\n"
                           "except OSError as exc:\n"
                           "    print(exc)\n", timeout=10)
        assert attempt.stdout.strip() == "timeout", attempt.stdout
        # ... while the flow that had its mapping completes, every byte intact.
        sent = source.communicate(timeout=60)[0].split()
        assert sink.communicate(timeout=10)[0].split() == sent
