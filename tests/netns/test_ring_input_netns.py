"""Bad frames in the rings (issue 8): malformed, oversized and truncated frames
reach the workers, are dropped or answered, counted, and the workers live on."""

import os
import random
import shutil
import subprocess
import sys

import pytest

from netns_support import ROOT, Namespace, running_lab

sys.path.insert(0, str(ROOT / "tests"))
import pktlib as pl                                             # noqa: E402

N6 = "2001:db8::5"
N4_VIA_POOL6 = "64:ff9b::c000:205"

# Writes the hex frames given on stdin, one a line, on IFNAME (AF_PACKET).
FRAME_WRITER = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
n = 0
for line in sys.stdin:
    if line.strip():
        s.send(bytes.fromhex(line.strip())); n += 1
print(n)
"""

# What counts as "this frame was handled": anything but the plain receive counters.
NOT_AN_OUTCOME = {"JSTAT_RECEIVED6", "JSTAT_RECEIVED4", "JSTAT_BIB_ENTRIES", "JSTAT_SESSIONS",
                  "JOOL_DP_RX_FRAMES", "JOOL_DP_NH_LEARNED"}


def ethernet(dst_mac, src_mac, payload, ethertype=0x86DD):
    return (bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
            + ethertype.to_bytes(2, "big") + payload)


def udp6(length_field=None, payload=b"hello", plen=None):
    return pl.ipv6(N6, N4_VIA_POOL6, pl.udp(4000, 7, payload, length=length_field), plen=plen)


def cut(packet, keep):
    """The packet's first `keep` bytes, its payload length made to agree."""
    short = bytearray(packet[:keep])
    short[4:6] = (keep - 40).to_bytes(2, "big")
    return bytes(short)


def malformed_packets():
    """(name, IPv6 packet bytes) of things a translator must survive."""
    good = udp6()
    rng = random.Random(7915)
    cases = [
        ("runt: 20 bytes of IPv6 header", good[:20]),
        ("payload length beyond the frame", udp6(plen=1000)),
        ("payload length short of the UDP header", udp6(plen=4)),
        ("version 4 in an IPv6 ethertype", bytes([0x45]) + good[1:]),
        ("UDP length beyond the packet", udp6(length_field=500)),
        ("UDP length under 8", udp6(length_field=3)),
        ("TCP data offset past the end",
         pl.ipv6(N6, N4_VIA_POOL6, pl.raw(6, pl.tcp(4000, 80).data[:12] + b"\xf0\x02"
                                          + b"\0" * 6))),
        ("TCP cut at 10 bytes", cut(pl.ipv6(N6, N4_VIA_POOL6, pl.tcp(4000, 80)), 50)),
        ("hop-by-hop header longer than the packet",
         good[:6] + b"\x00" + good[7:40] + bytes([17, 255]) + b"\0" * 6),
        ("ICMPv6 echo cut at 2 bytes", cut(pl.ipv6(N6, N4_VIA_POOL6, pl.icmp6_echo(1)), 42)),
        ("unknown next header", pl.ipv6(N6, N4_VIA_POOL6, pl.raw(143, b"\0" * 16))),
    ]
    # (A wrong UDP checksum is not among them: a translator carries it over,
    # adjusted, for the receiver to catch, RFC 7915 §4.5.)
    # Random tails after a valid start (the BPF filter lets them in: pool6 address).
    for i in range(40):
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        cases.append((f"random tail {i}", good[:40 + rng.randrange(0, 8)] + tail))
    return cases


def counters(lab):
    out = lab.jool("stats", "display", "--all", "--userspace", "--csv", timeout=20).stdout
    values = {}
    for line in out.splitlines():
        name, _, value = line.partition(",")
        if value.isdigit():
            values[name] = int(value)
    return values


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with running_lab("rin") as lab:
        yield lab


def workers_of(lab):
    """Every process in the translator's namespace (control process and workers)."""
    return sorted(int(p) for p in subprocess.run(
        ["ip", "netns", "pids", lab.ns("jool")], capture_output=True, text=True,
        timeout=5).stdout.split())


def send_frames(lab, frames):
    script = "\n".join(f.hex() for f in frames) + "\n"
    result = lab.exec("n6", sys.executable, "-c", FRAME_WRITER, "to_jool_v6", input=script,
                      timeout=20)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_malformed_frames_are_counted_and_survived(lab):
    dst, src = lab.mac("jool", "to_client_v6"), lab.mac("n6", "to_jool_v6")
    processes = workers_of(lab)
    unexplained = []
    for name, packet in malformed_packets():
        before = counters(lab)
        assert send_frames(lab, [ethernet(dst, src, packet)]) == 1
        after = counters(lab)
        moved = delta(before, after)
        outcome = {k: v for k, v in moved.items() if k not in NOT_AN_OUTCOME}
        if moved.get("JOOL_DP_RX_FRAMES", 0) == 0:
            continue                    # the kernel or the BPF filter refused it first
        if not outcome:
            unexplained.append((name, moved))
        assert moved.get("JSTAT_SUCCESS", 0) == 0 or name.startswith("random"), (name, moved)
    assert unexplained == [], unexplained
    assert workers_of(lab) == processes             # nobody crashed or restarted
    # And the translator still translates.
    ping = lab.exec("n6", "ping", "-c", "1", "-W", "2", N4_VIA_POOL6, timeout=10)
    assert ping.returncode == 0, ping.stdout


def test_oversized_packet_gets_packet_too_big(lab):
    # Jumbo frames between n6 and the translator, 1500 on the IPv4 side: a 6000-byte
    # IPv6 packet cannot be translated whole (IPv6 never fragments on the way),
    # so the translator answers ICMPv6 Packet Too Big (RFC 7915 §5.1.1... RFC 6146).
    for node, ifname in (("n6", "to_jool_v6"), ("jool", "to_client_v6")):
        lab.exec(node, "ip", "link", "set", ifname, "mtu", "9000", check=True)
    dst, src = lab.mac("jool", "to_client_v6"), lab.mac("n6", "to_jool_v6")
    processes = workers_of(lab)
    before = counters(lab)
    big = pl.ipv6(N6, N4_VIA_POOL6, pl.udp(4000, 7, b"x" * 6000))
    assert send_frames(lab, [ethernet(dst, src, big)]) == 1
    moved = delta(before, counters(lab))
    assert moved.get("JSTAT_PKT_TOO_BIG", 0) + moved.get("JSTAT_ICMP6ERR_SUCCESS", 0) >= 1, \
        moved
    assert workers_of(lab) == processes


# Runs in a namespace of its own: a ring whose blocks hold 4 KB, fed a 6000-byte
# frame and a small one over a veth pair with 9000-byte MTU.
SMALL_RING = r"""
import socket, sys, time
sys.path.insert(0, sys.argv[1])
from jool._fast.egress import Egress
from jool._fast.pipeline import Translator
from jool._fast.rings import RxRing, wait
from jool._fast.stats import DATAPLANE_COUNTER_NAMES, DATAPLANE_FIRST_SLOT
import numpy as np
counters = np.zeros(128, dtype=np.uint64)
ring = RxRing("rb", block_size=4096, block_nr=16, frame_size=2048, fanout_group=None)
tx = Egress(counters=counters)
xlat = Translator(counters=counters)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("ra", 0))
mac = bytes.fromhex(open("/sys/class/net/rb/address").read().strip().replace(":", ""))
for size in (6000, 100, 5000, 100):
    frame = mac + mac + b"\x86\xdd" + bytes([0x60]) + b"\0" * (size - 15)
    s.send(frame)
def named():
    return {n: int(counters[DATAPLANE_FIRST_SLOT + i])
            for i, n in enumerate(DATAPLANE_COUNTER_NAMES)}
deadline = time.monotonic() + 3
while named()["JOOL_DP_RX_FRAMES"] < 4 and time.monotonic() < deadline:
    for r in wait([ring], 50):
        r.drain(xlat, 0, tx)
print(named()["JOOL_DP_RX_FRAMES"], named()["JOOL_DP_RX_TRUNCATED"], ring.dropped())
"""


def test_frames_longer_than_a_ring_block_are_truncated_and_counted():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    ns = Namespace("rng")
    try:
        # No IPv6 on the pair: no ND or MLD frames of the kernel's own in the ring.
        for cmd in (["ip", "link", "add", "ra", "mtu", "9000", "type", "veth", "peer", "name",
                     "rb", "mtu", "9000"],
                    ["sysctl", "-qw", "net.ipv6.conf.ra.disable_ipv6=1"],
                    ["sysctl", "-qw", "net.ipv6.conf.rb.disable_ipv6=1"],
                    ["ip", "link", "set", "ra", "up"], ["ip", "link", "set", "rb", "up"]):
            assert ns.exec(*cmd).returncode == 0
        result = ns.exec(sys.executable, "-c", SMALL_RING, str(ROOT), timeout=30)
        assert result.returncode == 0, result.stderr
        seen, truncated, ring_drops = map(int, result.stdout.split())
        # All four frames are read; the two that do not fit a block are counted
        # as truncated and dropped, the two small ones go on to the translator.
        assert (seen, truncated, ring_drops) == (4, 2, 0), result.stdout
    finally:
        ns.remove()
