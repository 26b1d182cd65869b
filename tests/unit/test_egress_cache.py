"""The egress's next-hop cache (jool/_fast/egress.pyx): what it keeps, for how
long, what it evicts and what it queues for resolution."""

import os

import numpy as np
import pytest

from jool._fast.egress import Egress
from jool._fast.stats import DATAPLANE_COUNTER_NAMES, DATAPLANE_FIRST_SLOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="packet sockets need root")

V4 = bytes([192, 0, 2, 5])
V6 = bytes.fromhex("20010db8000000000000000000000005")
DST_MAC = bytes.fromhex("020000000005")
SRC_MAC = bytes.fromhex("020000000001")


def slot(name):
    return DATAPLANE_FIRST_SLOT + DATAPLANE_COUNTER_NAMES.index(name)


@pytest.fixture
def egress():
    e = Egress()
    yield e
    e.close()


def test_learned_entry_builds_the_ethernet_header(egress):
    egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 1500, now=1000)
    entry = egress.entry(4, V4, now=1001)
    assert entry == {"state": "usable", "ifindex": 7, "mtu": 1500,
                     "eth": DST_MAC + SRC_MAC + b"\x08\x00", "stale": False}
    egress.learn(6, V6, 8, DST_MAC, SRC_MAC, 1280, now=1000)
    assert egress.entry(6, V6, now=1001)["eth"][12:] == b"\x86\xdd"


def test_families_do_not_share_entries(egress):
    egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 1500, now=0)
    # The IPv6 address whose first bytes are the IPv4 one is another destination.
    assert egress.entry(6, V4 + bytes(12), now=1) is None


def test_entries_expire_across_the_clock_wrap(egress):
    now = 0xFFFFFF00
    egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 1500, now=now, ttl_ms=1000)
    assert egress.entry(4, V4, now=(now + 999) & 0xFFFFFFFF) is not None
    assert egress.entry(4, V4, now=(now + 1000) & 0xFFFFFFFF) is None


def test_refused_destination_stays_with_the_kernel_until_it_expires(egress):
    egress.refuse(4, V4, now=50, ttl_ms=200)
    assert egress.entry(4, V4, now=100)["state"] == "refused"
    assert egress.entry(4, V4, now=250) is None


def test_flush_forgets_everything(egress):
    egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 1500, now=0)
    egress.learn(6, V6, 7, DST_MAC, SRC_MAC, 1500, now=0)
    egress.flush()
    assert egress.entry(4, V4, now=1) is None and egress.entry(6, V6, now=1) is None


def test_a_full_bucket_evicts_the_entry_that_expires_first():
    egress = Egress(buckets=1)          # one bucket of four ways
    try:
        addrs = [bytes([198, 51, 100, i]) for i in range(1, 6)]
        for i, a in enumerate(addrs[:4]):
            egress.learn(4, a, 1, DST_MAC, SRC_MAC, 1500, now=0, ttl_ms=1000 + i)
        egress.learn(4, addrs[4], 1, DST_MAC, SRC_MAC, 1500, now=0, ttl_ms=5000)
        alive = [egress.entry(4, a, now=1) is not None for a in addrs]
        assert alive == [False, True, True, True, True]
    finally:
        egress.close()


def test_expired_way_is_reused_before_a_live_one():
    egress = Egress(buckets=1)
    try:
        addrs = [bytes([198, 51, 100, i]) for i in range(1, 6)]
        egress.learn(4, addrs[0], 1, DST_MAC, SRC_MAC, 1500, now=0, ttl_ms=10)
        for a in addrs[1:4]:
            egress.learn(4, a, 1, DST_MAC, SRC_MAC, 1500, now=0, ttl_ms=5)
        # At 20 ms every way is dead; at 7 ms only the three short ones are.
        egress.learn(4, addrs[4], 1, DST_MAC, SRC_MAC, 1500, now=7, ttl_ms=100)
        assert egress.entry(4, addrs[0], now=8) is not None
        assert egress.entry(4, addrs[4], now=8) is not None
    finally:
        egress.close()


def test_bad_arguments_are_refused(egress):
    with pytest.raises(ValueError):
        egress.learn(4, V6, 7, DST_MAC, SRC_MAC, 1500, now=0)       # wrong length
    with pytest.raises(ValueError):
        egress.learn(4, V4, 7, DST_MAC[:5], SRC_MAC, 1500, now=0)
    with pytest.raises(ValueError):
        egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 40, now=0)
    with pytest.raises(ValueError):
        Egress(buckets=3)
    with pytest.raises(ValueError):
        Egress(counters=np.zeros(10, dtype=np.uint64))


def test_counters_land_in_the_given_row():
    row = np.zeros(96, dtype=np.uint64)
    egress = Egress(counters=row)
    try:
        egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 1500, now=0)
        egress.refuse(6, V6, now=0)
        assert row[slot("JOOL_DP_NH_LEARNED")] == 1
        assert row[slot("JOOL_DP_NH_REFUSED")] == 1
    finally:
        egress.close()


def test_an_aged_entry_is_kept_stale_while_it_is_confirmed_again(egress):
    # A destination whose entry aged out goes through the kernel again and is
    # queued for resolution; its old next hop stays, marked stale, for what only a
    # packet socket can carry (super-frames), until it is learnt or refused anew.
    import struct
    egress.learn(4, V4, 7, DST_MAC, SRC_MAC, 1500, now=1000, ttl_ms=100)
    packet = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0,
                         bytes([192, 0, 2, 1]), V4) + bytes(8)
    egress.send([packet], 1200)                     # expired: through the kernel
    assert egress.misses() == [(4, V4)]
    entry = egress.entry(4, V4, now=1201)
    assert entry["state"] == "pending" and entry["stale"]
    assert entry["eth"] == DST_MAC + SRC_MAC + b"\x08\x00" and entry["ifindex"] == 7
    egress.refuse(4, V4, now=1202)
    assert not egress.entry(4, V4, now=1203)["stale"]
    # A destination never learnt is pending without a next hop.
    other = bytes([192, 0, 2, 9])
    egress.send([packet[:16] + other + packet[20:]], 1300)
    assert egress.entry(4, other, now=1301)["stale"] is False
