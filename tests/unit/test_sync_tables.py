"""Session sync against the tables (jool/_fast/sync.pyx, jool/sync/instance_sync.py):
what changed is collected once, records install per spec/joold.md §3, nothing is
echoed, and the hand-over rules of §2 with our full-queue difference."""
import base64
import gc
import socket

import numpy as np
import pytest

from _nat64 import (CLIENT6B, EST, ICMP_TO, PEER4, PEER_PORT, POOL4, TRANS,
                    UDP_TO, Nat64, Tables, echo6, pl, tcp6, udp6)

sync = pytest.importorskip("jool._fast.sync")
from jool.control.counters import SLOTS  # noqa: E402
from jool.sync import wire  # noqa: E402
from jool.sync.instance_sync import SLOT, InstanceSync  # noqa: E402
from jool.sync.link import FrameLink  # noqa: E402

T0 = 1_000_000
TIMEOUTS = (EST, TRANS, UDP_TO, ICMP_TO)
POOL6 = (bytes.fromhex("0064ff9b" + "00" * 12), 96)


@pytest.fixture
def pair():
    made = []
    for _ in range(2):
        made.append(Tables.create(capacity=4096))
    nodes = [Nat64(t) for t in made]
    yield nodes
    for n in nodes:
        n.close()
    gc.collect()
    for t in made:
        assert t.check() == []
        t.close()
        t.unlink()


def sent_state(tables):
    return (np.zeros(tables.capacity, np.uint32), np.zeros(tables.capacity, np.uint32))


def collect(node, state, now, out_n=256):
    out = wire.empty(out_n)
    raw = out.view(np.uint8).reshape(-1, wire.RECORD_SIZE)
    n, group, _ = sync.collect(node.tables, state[0], state[1], raw, POOL6, now, TIMEOUTS)
    assert group == sync.groups(node.tables)
    return out[:n]


def install(node, state, records, now):
    raw = np.ascontiguousarray(records).view(np.uint8).reshape(-1, wire.RECORD_SIZE)
    return sync.install(node.tables, raw, now, TIMEOUTS, state[0], state[1])


def rows(node, proto, now):
    return sorted((s.src6, s.sport6, s.dst6, s.dport6, s.src4, s.sport4, s.dst4, s.dport4,
                   s.state, s.expires_in_ms) for s in node.sessions(proto, now))


def make_traffic(a):
    a.send(udp6(), T0)
    a.send(udp6(src=CLIENT6B, sport=7000), T0 + 5)
    a.send(echo6(4321), T0 + 10)
    a.send(tcp6(pl.SYN), T0 + 20)


def test_changes_travel_and_install_field_for_field(pair):
    a, b = pair
    make_traffic(a)
    sa, sb = sent_state(a.tables), sent_state(b.tables)
    recs = collect(a, sa, T0 + 100)
    assert len(recs) == len(a.sessions("udp", T0)) + len(a.sessions("tcp", T0)) \
        + len(a.sessions("icmp", T0))
    data = wire.encode(recs)
    decoded, rejected = wire.decode(data)
    assert rejected == 0
    assert install(b, sb, decoded, T0 + 100) == (len(recs), 0, 0, 0, 0)
    for proto in ("udp", "tcp", "icmp"):
        assert rows(b, proto, T0 + 100) == rows(a, proto, T0 + 100)
        assert b.bib(proto) == a.bib(proto)
    # Nothing changed since: nothing to send, from either side (b does not echo).
    assert len(collect(a, sa, T0 + 200)) == 0
    assert len(collect(b, sb, T0 + 200)) == 0


def test_a_burst_is_one_record_and_state_changes_are_resent(pair):
    a, _b = pair
    sa = sent_state(a.tables)
    for i in range(20):
        a.send(udp6(), T0 + i)
    assert len(collect(a, sa, T0 + 50)) == 1
    a.send(tcp6(pl.SYN), T0 + 60)
    [rec] = collect(a, sa, T0 + 70)
    assert rec["proto"] == wire.PROTO_TCP and rec["state"] == 1    # V6_INIT on the wire
    assert rec["timer"] == wire.TIMER_TRANS
    mask = a.mask("tcp")
    a.send(pl.ipv4(PEER4, POOL4, pl.tcp(PEER_PORT, mask, flags=pl.SYN | pl.ACK)), T0 + 80)
    [rec] = collect(a, sa, T0 + 90)
    assert rec["state"] == 0 and rec["timer"] == wire.TIMER_EST     # ESTABLISHED
    assert rec["expires"] == EST - 10


def test_refresh_resent_only_when_the_peer_lags_an_eighth(pair):
    a, _b = pair
    sa = sent_state(a.tables)
    a.send(udp6(), T0)
    assert len(collect(a, sa, T0)) == 1
    a.send(udp6(), T0 + UDP_TO // 8 - 1)
    assert len(collect(a, sa, T0 + UDP_TO // 8)) == 0
    a.send(udp6(), T0 + UDP_TO // 8 + 1)
    [rec] = collect(a, sa, T0 + UDP_TO // 8 + 1)
    assert rec["expires"] == UDP_TO


def test_a_stamp_newer_than_the_collection_clock_is_not_expired(pair):
    a, _b = pair
    sa = sent_state(a.tables)
    a.send(udp6(), T0 + 5)              # a worker's clock can run ahead of the collector's
    [rec] = collect(a, sa, T0)
    assert rec["expires"] == UDP_TO


def test_expiry_counts_from_reception(pair):
    a, b = pair
    sa, sb = sent_state(a.tables), sent_state(b.tables)
    a.send(udp6(), T0)
    [rec] = collect(a, sa, T0 + 250_000)          # 50 s left
    assert rec["expires"] == 50_000
    install(b, sb, np.array([rec]), 77)           # another clock altogether
    [s] = b.sessions("udp", 77)
    assert s.expires_in_ms == 50_000
    assert b.expire(77 + 50_001) is not None and b.sessions("udp", 77 + 50_001) == []


def test_existing_session_overwritten(pair):
    a, b = pair
    sa, sb = sent_state(a.tables), sent_state(b.tables)
    a.send(tcp6(pl.SYN), T0)
    install(b, sb, collect(a, sa, T0), T0)
    mask = a.mask("tcp")
    a.send(pl.ipv4(PEER4, POOL4, pl.tcp(PEER_PORT, mask, flags=pl.SYN | pl.ACK)), T0 + 10)
    assert install(b, sb, collect(a, sa, T0 + 10), T0 + 10) == (0, 1, 0, 0, 0)
    [s] = b.sessions("tcp", T0 + 10)
    assert s.state == "ESTABLISHED" and s.expires_in_ms == EST


def test_bib_rules(pair):
    a, b = pair
    sa, sb = sent_state(a.tables), sent_state(b.tables)
    a.send(udp6(), T0)
    [rec] = collect(a, sa, T0)
    # b already maps the client elsewhere: the session joins b's BIB entry.
    b.send(udp6(dst=pl.embed("64:ff9b::/96", "203.0.113.50")), T0)
    own_mask = b.mask("udp")
    assert install(b, sb, np.array([rec]), T0)[0] == 1
    assert {s.sport4 for s in b.sessions("udp", T0)} == {own_mask}
    # Its IPv4 transport address taken by another client: ignored, counted.
    other = rec.copy()
    other["src6"] = bytes.fromhex("20010db8" + "00" * 11 + "99")
    other["src4_port"] = own_mask
    assert install(b, sb, np.array([other]), T0) == (0, 0, 1, 0, 0)


def test_table_full_counted():
    small = Tables.create(capacity=1)
    a_tables = Tables.create(capacity=64)
    try:
        a, b = Nat64(a_tables), Nat64(small)
        sa, sb = sent_state(a_tables), sent_state(small)
        a.send(udp6(), T0)
        a.send(udp6(src=CLIENT6B), T0)
        recs = collect(a, sa, T0)
        assert install(b, sb, recs, T0) == (1, 0, 0, 1, 0)
        assert small.check() == []
        a.close(); b.close()
    finally:
        gc.collect()
        for t in (small, a_tables):
            t.close()
            t.unlink()


def test_advertise_marks_everything(pair):
    a, _b = pair
    for i in range(100):
        a.send(udp6(sport=10000 + i), T0)
    node = InstanceSync(a.tables, np.zeros(SLOTS, np.uint64), {"ss-enabled": True,
                        "pool6": "64:ff9b::/96", "ss-capacity": 1000}, a.t.options.copy)
    x, y = socket.socketpair()
    node.attach(FrameLink(x))
    node.pump(T0)
    assert node.counters[SLOT["JOOL_SS_QUEUED"]] == 100
    node.advertise()
    node.awaiting_ack = False
    node.pump(T0 + 1, now=10**6)
    assert node.counters[SLOT["JOOL_SS_QUEUED"]] == 200
    x.close(), y.close()


# ------------------------------------------------------------ hand-over rules (§2)

class Peer:
    def __init__(self, a, **values):
        self.values = {"ss-enabled": True, "pool6": "64:ff9b::/96", "ss-flush-asap": True,
                       "ss-flush-deadline": 2000, "ss-capacity": 512, "ss-max-payload": 1452}
        self.values.update(values)
        self.counters = np.zeros(SLOTS, np.uint64)
        self.node = InstanceSync(a.tables, self.counters, self.values, a.t.options.copy)
        self.mine, self.theirs = socket.socketpair()
        self.theirs.setblocking(False)
        self.node.attach(FrameLink(self.mine))
        self.daemon = FrameLink(self.theirs)

    def frames(self):
        try:
            return self.daemon.receive()
        except Exception:
            return []

    def records(self, frames):
        return sum(len(base64.b64decode(d)) // 140 for f in frames for d in f["datagrams"])

    def close(self):
        self.mine.close()
        self.theirs.close()


def new_flows(a, n, base, t):
    for i in range(n):
        a.send(udp6(sport=base + i), t)


def test_asap_hands_over_then_waits_for_the_ack(pair):
    a, _ = pair
    p = Peer(a)
    new_flows(a, 3, 1000, T0)
    p.node.pump(T0, now=1.0)
    [f] = p.frames()
    assert p.records([f]) == 3 and len(f["datagrams"]) == 1
    new_flows(a, 2, 2000, T0)
    p.node.pump(T0, now=1.1)
    assert p.frames() == []                             # no ACK yet
    p.node.on_frame({"type": "ack", "seq": f["seq"]}, T0)
    p.node.pump(T0, now=1.2)
    assert p.records(p.frames()) == 2
    p.close()


def test_without_asap_whole_datagrams_or_the_deadline(pair):
    a, _ = pair
    p = Peer(a, **{"ss-flush-asap": False})
    new_flows(a, 25, 1000, T0)
    p.node.pump(T0, now=1.0)
    [f] = p.frames()
    assert [len(base64.b64decode(d)) for d in f["datagrams"]] == [1400, 1400]
    p.node.on_frame({"type": "ack", "seq": f["seq"]}, T0)
    p.node.pump(T0, now=1.5)
    assert p.frames() == []                             # 5 left, not a datagram
    p.node.pump(T0, now=3.01)                           # 2 s since the hand-over
    assert p.records(p.frames()) == 5
    p.close()


def test_a_full_queue_goes_even_unacknowledged(pair):
    a, _ = pair
    p = Peer(a, **{"ss-capacity": 64})
    new_flows(a, 3, 1000, T0)
    p.node.pump(T0, now=1.0)
    assert p.records(p.frames()) == 3
    new_flows(a, 200, 2000, T0)                         # no ACK meanwhile
    for step in range(6):
        p.node.pump(T0, now=1.1 + step)
    got = p.records(p.frames())
    assert got == 200 and p.counters[SLOT["JOOL_SS_SENT"]] == 203
    p.close()


def test_disabled_discards_counted_and_receives_nothing(pair):
    a, b = pair
    p = Peer(a, **{"ss-flush-asap": False})
    new_flows(a, 3, 1000, T0)
    p.node.pump(T0, now=1.0)
    assert p.node.count == 3
    p.values["ss-enabled"] = False
    p.node.pump(T0, now=1.1)
    assert p.node.count == 0 and p.counters[SLOT["JOOL_SS_DISCARDED"]] == 3
    q = Peer(b, **{"ss-enabled": False})
    q.node.receive([b"\x00" * 140, b"junk"], T0)
    assert q.counters[SLOT["JOOL_SS_RECEIVED"]] == 2 \
        and q.counters[SLOT["JOOL_SS_REJECTED"]] == 2
    p.close(), q.close()
