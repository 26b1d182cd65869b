"""pool4 and the choice of the IPv4 transport address (spec/behaviour.md §3, §4).

Every observation goes through the public stateful API (docs/stateful-api.md):
pool4_add/pool4_remove/pool4_entries, bib_add/bib_entries, sessions, counters and
the source (address, port) of translated IPv6 packets.

How the RFC 6056 tests stay deterministic although F() has a random secret:
with an f-args selection whose inputs are equal for every packet of a test, F is one
constant, so allocation k starts at (constant + next_ephemeral); next_ephemeral grows
by the number of candidates examined, so the next allocation starts right after
the last port handed out (``succ``). Filling the candidates that follow with static
BIB entries then makes the walk exactly as long as a test wants.
"""
import faulthandler
import gc
import ipaddress

import pytest

import pktlib as pl
from jool._fast.stats import COUNTER_IDS

tables_mod = pytest.importorskip("jool._fast.tables")
from jool._fast.pipeline import OutKind, Translator, Verdict  # noqa: E402

Tables = tables_mod.Tables

POOL6 = "64:ff9b::/96"
PEER4 = "198.51.100.7"
OWN4, OWN6 = "192.0.2.254", "2001:db8::fe"
PROTOS = ("tcp", "udp", "icmp")
F_DST_ADDR, F_DST_PORT, F_SRC_PORT, F_SRC_ADDR = 0b0010, 0b0001, 0b0100, 0b1000


# ----------------------------------------------------------------- fixtures
@pytest.fixture
def tables():
    tb = Tables.create(capacity=1 << 14)
    try:
        yield tb
    finally:
        gc.collect()
        try:
            tb.close()
        finally:
            tb.unlink()


@pytest.fixture
def mk(tables):
    """Factory of translators on this test's tables (stateful mode)."""
    made = []

    def make(**kw):
        args = dict(tables=tables, pool6=POOL6, own4=OWN4, own6=OWN6)
        args.update(kw)
        t = Translator(**args)
        made.append(t)
        return t

    yield make
    made.clear()


@pytest.fixture
def watchdog():
    """A core stuck in an endless candidate walk would hang the suite: abort instead
    (faulthandler's thread works even while the main thread sits in nogil code)."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ------------------------------------------------------------------ helpers
def client(i, net="2001:db8:c::"):
    return str(ipaddress.IPv6Address(net) + i)


def peer6(addr4=PEER4):
    return pl.embed(POOL6, addr4)


def pkt6(proto, src, sport, dst4=PEER4, dport=80, flags=pl.SYN):
    """An IPv6 packet of `proto` from src#sport to dst4#dport (ICMP: echo request,
    identifier = sport)."""
    if proto == "udp":
        l4 = pl.udp(sport, dport, b"data")
    elif proto == "tcp":
        l4 = pl.tcp(sport, dport, seq=1, flags=flags)
    else:
        l4 = pl.icmp6_echo(sport, 1, b"ping")
    return pl.ipv6(src, peer6(dst4), l4)


def pkt4(proto, dst4, dport, src4=PEER4, sport=80, flags=pl.ACK):
    """An IPv4 packet from src4#sport to dst4#dport (ICMP: echo reply, id = dport)."""
    if proto == "udp":
        l4 = pl.udp(sport, dport, b"data")
    elif proto == "tcp":
        l4 = pl.tcp(sport, dport, seq=1, ack=1, flags=flags)
    else:
        l4 = pl.icmp4_echo(dport, 1, b"pong", reply=True)
    return pl.ipv4(src4, dst4, l4)


def send(t, pkt, now=0, mark=0):
    verdict, reason, outs = t.translate(pkt, now_ms=now, mark=mark)
    return verdict, reason, [(k, bytes(b)) for k, b in outs]


def taddr(p):
    """(address, port) of a parsed packet's source (ICMP: identifier)."""
    return p.src, (p.icmp_id if p.proto in (pl.ICMP, pl.ICMPV6) else p.sport)


def mapped(t, proto, src, sport, dst4=PEER4, dport=80, now=0, mark=0):
    """Send one IPv6 packet; it must be translated. Returns its IPv4 source."""
    verdict, reason, outs = send(t, pkt6(proto, src, sport, dst4, dport), now, mark)
    assert verdict == Verdict.TRANSLATED, (verdict, reason)
    assert len(outs) == 1 and outs[0][0] == OutKind.IPV4
    p = pl.parse(outs[0][1])
    assert p.dst == dst4
    return taddr(p)


def dropped(t, proto, src, sport, counter, dst4=PEER4, now=0, mark=0):
    before = t.counter(counter)
    verdict, reason, outs = send(t, pkt6(proto, src, sport, dst4), now, mark)
    assert verdict == Verdict.DROP, (verdict, reason)
    assert reason == COUNTER_IDS[counter], (reason, counter)
    assert outs == []
    assert t.counter(counter) == before + 1


def candidates(ranges):
    """The candidate list of a set: ranges given as (addr, lo, hi) in the set's
    order (address, then port)."""
    out = []
    for addr, lo, hi in sorted(ranges, key=lambda r: (ipaddress.IPv4Address(r[0]), r[1])):
        out.extend((addr, p) for p in range(lo, hi + 1))
    return out


def succ(cands, ta, k=1):
    """The k-th candidate after ta (with wrap-around)."""
    return cands[(cands.index(ta) + k) % len(cands)]


def proto_name(p):
    return {6: "tcp", 17: "udp", 1: "icmp"}.get(p, str(p).lower()) if not isinstance(p, str) \
        else p.lower()


def entries(t, proto=None, mark=None):
    """pool4 entries as sorted (mark, proto, addr, lo, hi) tuples."""
    out = []
    for e in t.pool4_entries():
        m, pr, addr, lo, hi = e[0], proto_name(e[1]), str(e[2]), e[3], e[4]
        if (proto is None or pr == proto) and (mark is None or m == mark):
            out.append((m, pr, addr, lo, hi))
    return sorted(out, key=lambda x: (x[0], x[1], ipaddress.IPv4Address(x[2]), x[3]))


def iterations(t, proto, mark=0):
    """The set's (max_iterations, is_auto), the same on every entry of the set."""
    vals = {(e[5], bool(e[6])) for e in t.pool4_entries()
            if e[0] == mark and proto_name(e[1]) == proto}
    assert len(vals) == 1, vals
    return vals.pop()


def bib(t, proto):
    return sorted((str(a6), p6, str(a4), p4, bool(s)) for a6, p6, a4, p4, s in t.bib_entries(proto))


def total_bib(t):
    return sum(len(t.bib_entries(p)) for p in PROTOS)


def total_sessions(t, now=0):
    return sum(len(t.sessions(p, now)) for p in PROTOS)


def occupy(t, proto, taddrs, net="2001:db8:5::"):
    """Static BIB entries on the given IPv4 transport addresses."""
    for i, (a4, p4) in enumerate(taddrs):
        t.bib_add(proto, client(i + 1, net), 7, a4, p4)


# ====================================================== §3.1 structure
@pytest.mark.parametrize("proto", PROTOS)
def test_overlapping_ranges_fuse(mk, proto):
    t = mk()
    t.pool4_add(proto, "192.0.2.1/32", 1000, 2500)
    t.pool4_add(proto, "192.0.2.1/32", 1500, 3000)
    assert entries(t, proto) == [(0, proto, "192.0.2.1", 1000, 3000)]


@pytest.mark.parametrize("proto", PROTOS)
def test_adjacent_ranges_fuse(mk, proto):
    t = mk()
    t.pool4_add(proto, "192.0.2.1/32", 1, 5)
    t.pool4_add(proto, "192.0.2.1/32", 6, 9)
    assert entries(t, proto) == [(0, proto, "192.0.2.1", 1, 9)]


def test_contained_range_changes_nothing(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 100, 900)
    t.pool4_add("udp", "192.0.2.1/32", 200, 300)
    assert entries(t, "udp") == [(0, "udp", "192.0.2.1", 100, 900)]


def test_gap_keeps_ranges_apart_until_bridged(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 5)
    t.pool4_add("udp", "192.0.2.1/32", 7, 9)
    t.pool4_add("udp", "192.0.2.1/32", 20, 30)
    assert entries(t, "udp") == [(0, "udp", "192.0.2.1", 1, 5), (0, "udp", "192.0.2.1", 7, 9),
                                 (0, "udp", "192.0.2.1", 20, 30)]
    t.pool4_add("udp", "192.0.2.1/32", 6, 19)     # touches all three: one entry
    assert entries(t, "udp") == [(0, "udp", "192.0.2.1", 1, 30)]


def test_no_fusion_across_addresses_marks_or_protocols(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 5)
    t.pool4_add("udp", "192.0.2.2/32", 6, 9)          # other address
    t.pool4_add("udp", "192.0.2.1/32", 6, 9, mark=4)  # other mark: a separate set
    t.pool4_add("tcp", "192.0.2.1/32", 6, 9)          # other protocol
    assert entries(t, "udp", 0) == [(0, "udp", "192.0.2.1", 1, 5), (0, "udp", "192.0.2.2", 6, 9)]
    assert entries(t, "udp", 4) == [(4, "udp", "192.0.2.1", 6, 9)]
    assert entries(t, "tcp") == [(0, "tcp", "192.0.2.1", 6, 9)]


def test_same_transport_addresses_in_several_marks(mk):
    t = mk()
    for mark in (0, 1, 0xFFFFFFFF):
        t.pool4_add("udp", "192.0.2.1/32", 1, 100, mark=mark)
    assert entries(t, "udp") == [(m, "udp", "192.0.2.1", 1, 100) for m in (0, 1, 0xFFFFFFFF)]


@pytest.mark.parametrize("proto", PROTOS)
def test_reversed_range_is_swapped(mk, proto):
    t = mk()
    t.pool4_add(proto, "192.0.2.1/32", 3000, 1000)
    assert entries(t, proto) == [(0, proto, "192.0.2.1", 1000, 3000)]


@pytest.mark.parametrize("proto", ("tcp", "udp"))
def test_tcp_udp_range_from_0_starts_at_1(mk, proto):
    t = mk()
    t.pool4_add(proto, "192.0.2.1/32", 0, 10)
    assert entries(t, proto) == [(0, proto, "192.0.2.1", 1, 10)]


def test_icmp_range_may_start_at_0(mk):
    t = mk()
    t.pool4_add("icmp", "192.0.2.1/32", 0, 10)
    assert entries(t, "icmp") == [(0, "icmp", "192.0.2.1", 0, 10)]


def test_icmp_identifier_0_is_handed_out(mk):
    t = mk()
    t.pool4_add("icmp", "192.0.2.1/32", 0, 0)      # a single candidate: id 0
    assert mapped(t, "icmp", client(1), 77) == ("192.0.2.1", 0)
    dropped(t, "icmp", client(2), 78, "JSTAT_BIB6_NOT_FOUND")


def test_port_0_is_never_handed_out(mk, watchdog):
    t = mk(f_args=0b1111)
    t.pool4_add("udp", "192.0.2.1/32", 0, 3)       # really 1-3
    got = {mapped(t, "udp", client(i), 1000 + i)[1] for i in range(3)}
    assert got == {1, 2, 3}
    dropped(t, "udp", client(9), 1009, "JSTAT_BIB6_NOT_FOUND")


def test_prefix_is_expanded_per_address(mk):
    t = mk()
    t.pool4_add("tcp", "192.0.2.8/30", 1, 100)
    assert entries(t, "tcp") == [(0, "tcp", "192.0.2.%d" % i, 1, 100) for i in (8, 9, 10, 11)]


def test_prefix_with_host_bits_is_rejected(mk):
    t = mk()
    with pytest.raises(Exception):
        t.pool4_add("tcp", "192.0.2.9/30", 1, 100)
    assert entries(t) == []


# ====================================================== §3.2 removal
def test_remove_trims_splits_and_deletes(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 1000)
    t.pool4_remove("udp", "192.0.2.1/32", 1, 100)
    assert entries(t, "udp") == [(0, "udp", "192.0.2.1", 101, 1000)]
    t.pool4_remove("udp", "192.0.2.1/32", 900, 2000)
    assert entries(t, "udp") == [(0, "udp", "192.0.2.1", 101, 899)]
    t.pool4_remove("udp", "192.0.2.1/32", 400, 500)
    assert entries(t, "udp") == [(0, "udp", "192.0.2.1", 101, 399),
                                 (0, "udp", "192.0.2.1", 501, 899)]
    t.pool4_remove("udp", "192.0.2.1/32", 1, 65535)
    assert entries(t, "udp") == []
    assert entries(t) == []                         # the empty set disappears


def test_remove_spans_several_entries_and_addresses(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.0/30", 1, 100)
    t.pool4_add("udp", "192.0.2.0/30", 200, 300)
    t.pool4_remove("udp", "192.0.2.2/31", 50, 250)
    assert entries(t, "udp") == [
        (0, "udp", "192.0.2.0", 1, 100), (0, "udp", "192.0.2.0", 200, 300),
        (0, "udp", "192.0.2.1", 1, 100), (0, "udp", "192.0.2.1", 200, 300),
        (0, "udp", "192.0.2.2", 1, 49), (0, "udp", "192.0.2.2", 251, 300),
        (0, "udp", "192.0.2.3", 1, 49), (0, "udp", "192.0.2.3", 251, 300)]


def test_remove_touches_only_its_mark_and_protocol(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 100)
    t.pool4_add("udp", "192.0.2.1/32", 1, 100, mark=3)
    t.pool4_add("tcp", "192.0.2.1/32", 1, 100)
    t.pool4_remove("udp", "192.0.2.1/32", 1, 100, mark=3)
    assert entries(t) == [(0, "tcp", "192.0.2.1", 1, 100), (0, "udp", "192.0.2.1", 1, 100)]


def test_remove_of_absent_range_is_harmless(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 100)
    t.pool4_remove("udp", "192.0.2.1/32", 200, 300)
    t.pool4_remove("udp", "192.0.2.9/32", 1, 100)
    assert entries(t) == [(0, "udp", "192.0.2.1", 1, 100)]


def _removal_scene(mk):
    """UDP: mark 0 = 192.0.2.1#1-1000 and 192.0.2.2#1-1000; mark 5 = 192.0.2.1#50-150
    (the same transport addresses in another set). Static entries at .1#100 (inside
    the range removed later), .1#500 and .2#100 (outside); three dynamic entries
    allocated through mark 5 (thus inside .1#50-150); a TCP entry at .1#100.
    Every BIB entry gets a session."""
    t = mk(f_args=0b1111)
    t.pool4_add("udp", "192.0.2.1/32", 1, 1000)
    t.pool4_add("udp", "192.0.2.2/32", 1, 1000)
    t.pool4_add("udp", "192.0.2.1/32", 50, 150, mark=5)
    t.pool4_add("tcp", "192.0.2.1/32", 1, 1000)
    statics = [("2001:db8::a", 10, "192.0.2.1", 100), ("2001:db8::b", 11, "192.0.2.1", 500),
               ("2001:db8::c", 12, "192.0.2.2", 100)]
    for a6, p6, a4, p4 in statics:
        t.bib_add("udp", a6, p6, a4, p4)
        assert mapped(t, "udp", a6, p6) == (a4, p4)
    t.bib_add("tcp", "2001:db8::d", 13, "192.0.2.1", 100)
    assert mapped(t, "tcp", "2001:db8::d", 13) == ("192.0.2.1", 100)
    dyn = []
    for i in range(3):
        a4, p4 = mapped(t, "udp", client(i), 2000 + i, mark=5)
        assert a4 == "192.0.2.1" and 50 <= p4 <= 150
        dyn.append((client(i), 2000 + i, a4, p4))
    assert t.counter("JSTAT_BIB_ENTRIES") == 7 and t.counter("JSTAT_SESSIONS") == 7
    return t, statics, dyn


def test_non_quick_remove_deletes_bib_entries_and_sessions(mk):
    t, statics, dyn = _removal_scene(mk)
    t.pool4_remove("udp", "192.0.2.1/32", 50, 150, mark=0, quick=False)
    assert entries(t, "udp", 0) == [(0, "udp", "192.0.2.1", 1, 49), (0, "udp", "192.0.2.1", 151, 1000),
                                    (0, "udp", "192.0.2.2", 1, 1000)]
    assert entries(t, "udp", 5) == [(5, "udp", "192.0.2.1", 50, 150)]   # other set untouched
    # Every UDP entry in .1#50-150 went, static or dynamic, whatever mark made it.
    assert bib(t, "udp") == sorted([("2001:db8::b", 11, "192.0.2.1", 500, True),
                                    ("2001:db8::c", 12, "192.0.2.2", 100, True)])
    assert len(t.bib_entries("tcp")) == 1                               # other protocol kept
    left = {(s["src4"], s["sport4"]) for s in t.sessions("udp", 0)}
    assert left == {("192.0.2.1", 500), ("192.0.2.2", 100)}
    assert len(t.sessions("tcp", 0)) == 1
    assert t.counter("JSTAT_BIB_ENTRIES") == 3 == total_bib(t)
    assert t.counter("JSTAT_SESSIONS") == 3 == total_sessions(t)
    # The removed clients' IPv4 side is gone too: replies find no BIB.
    verdict, reason, _ = send(t, pkt4("udp", "192.0.2.1", 100))
    assert (verdict, reason) == (Verdict.PASS, COUNTER_IDS["JSTAT_BIB4_NOT_FOUND"])


def test_quick_remove_keeps_bib_entries(mk):
    t, statics, dyn = _removal_scene(mk)
    before = bib(t, "udp")
    t.pool4_remove("udp", "192.0.2.1/32", 50, 150, mark=0, quick=True)
    assert entries(t, "udp", 0) == [(0, "udp", "192.0.2.1", 1, 49), (0, "udp", "192.0.2.1", 151, 1000),
                                    (0, "udp", "192.0.2.2", 1, 1000)]
    assert bib(t, "udp") == before
    assert t.counter("JSTAT_SESSIONS") == 7


def test_non_quick_remove_of_whole_address(mk):
    t = mk()
    t.pool4_add("icmp", "192.0.2.1/32", 1, 50)
    for i in range(5):
        mapped(t, "icmp", client(i), 300 + i)
    assert len(t.bib_entries("icmp")) == 5
    t.pool4_remove("icmp", "192.0.2.1/32", 0, 65535)
    assert entries(t) == [] and t.bib_entries("icmp") == [] and t.sessions("icmp", 0) == []
    assert t.counter("JSTAT_BIB_ENTRIES") == 0 and t.counter("JSTAT_SESSIONS") == 0


# ====================================================== marks (§3.1, §4 step 1)
def _marked(mk):
    t = mk()
    for proto in PROTOS:
        t.pool4_add(proto, "192.0.2.1/32", 1, 1000)
        t.pool4_add(proto, "192.0.2.7/32", 1, 1000, mark=7)
        t.pool4_add(proto, "192.0.2.9/32", 1, 1000, mark=0xFFFFFFFF)
    return t


@pytest.mark.parametrize("proto", PROTOS)
def test_mark_selects_the_set(mk, proto):
    t = _marked(mk)
    assert mapped(t, proto, client(1), 1001, mark=0)[0] == "192.0.2.1"
    assert mapped(t, proto, client(2), 1002, mark=7)[0] == "192.0.2.7"
    assert mapped(t, proto, client(3), 1003, mark=0xFFFFFFFF)[0] == "192.0.2.9"


@pytest.mark.parametrize("proto", PROTOS)
def test_no_set_for_the_mark_drops(mk, proto):
    t = _marked(mk)
    dropped(t, proto, client(1), 1001, "JSTAT_MASK_DOMAIN_NOT_FOUND", mark=3)
    assert t.bib_entries(proto) == [] and t.counter("JSTAT_SESSIONS") == 0


@pytest.mark.parametrize("proto", PROTOS)
def test_no_set_for_the_mark_drops_even_with_a_bib_entry(mk, proto):
    t = _marked(mk)
    a = mapped(t, proto, client(1), 1001, mark=0)
    dropped(t, proto, client(1), 1001, "JSTAT_MASK_DOMAIN_NOT_FOUND", mark=3)
    # With any existing set the entry is reused, even when it lies in another set.
    assert mapped(t, proto, client(1), 1001, dst4="198.51.100.8", mark=7) == a


def test_no_set_for_the_protocol_drops(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 1000)
    dropped(t, "tcp", client(1), 1001, "JSTAT_MASK_DOMAIN_NOT_FOUND")
    dropped(t, "icmp", client(1), 1001, "JSTAT_MASK_DOMAIN_NOT_FOUND")
    assert mapped(t, "udp", client(1), 1001)[0] == "192.0.2.1"


@pytest.mark.parametrize("proto", PROTOS)
def test_ipv4_side_ignores_marks(mk, proto):
    t = _marked(mk)
    a4, p4 = mapped(t, proto, client(1), 1001, mark=7)
    verdict, reason, outs = send(t, pkt4(proto, a4, p4))
    assert verdict == Verdict.TRANSLATED, reason
    p = pl.parse(outs[0][1])
    assert p.dst == client(1)
    assert (p.icmp_id if proto == "icmp" else p.dport) == 1001
    # An address of any set belongs to pool4 (no BIB: untranslatable as BIB4_NOT_FOUND
    # for UDP/ICMP); an address of none is not pool4 at all.
    if proto != "tcp":
        verdict, reason, _ = send(t, pkt4(proto, "192.0.2.9", 999))
        assert (verdict, reason) == (Verdict.PASS, COUNTER_IDS["JSTAT_BIB4_NOT_FOUND"])
    verdict, reason, _ = send(t, pkt4(proto, "192.0.2.99", 10))
    assert (verdict, reason) == (Verdict.PASS, COUNTER_IDS["JSTAT_POOL4_MISMATCH"])


# ====================================================== §3.3 / §3.4 max iterations
def test_auto_is_1024_for_small_sets(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 100)
    assert iterations(t, "udp") == (1024, True)


def test_auto_formula_between_the_bounds(mk):
    t = mk()
    t.pool4_add("tcp", "198.51.100.0/30", 0, 65535)        # 4 x 65535 = 262140
    assert iterations(t, "tcp") == (262140 >> 7, True)
    t.pool4_add("tcp", "192.0.2.1/32", 1000, 3000)         # + 2001: the docs' example
    assert iterations(t, "tcp") == (264141 >> 7, True)      # 2063


def test_auto_clamps_at_8192(mk):
    t = mk()
    t.pool4_add("udp", "198.51.100.0/28", 1, 65535)        # 16 x 65535 = 1048560
    assert iterations(t, "udp") == (1048560 >> 7, True)    # 8191
    t.pool4_add("udp", "198.51.100.16/32", 1, 65535)
    assert iterations(t, "udp") == (8192, True)


def test_auto_is_recomputed_on_removal(mk):
    t = mk()
    t.pool4_add("udp", "198.51.100.0/30", 1, 65535)
    assert iterations(t, "udp") == (2047, True)
    t.pool4_remove("udp", "198.51.100.0/31", 1, 65535)
    assert iterations(t, "udp") == (1024, True)             # 131070 >> 7 = 1023 -> 1024


def test_max_iterations_per_set(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 100, max_iterations=5)
    t.pool4_add("udp", "192.0.2.1/32", 1, 100, mark=2, max_iterations=0)
    t.pool4_add("udp", "192.0.2.1/32", 1, 100, mark=3)
    assert iterations(t, "udp", 0) == (5, False)
    mi, auto = iterations(t, "udp", 2)
    assert not auto and mi in (0, None)                     # infinity
    assert iterations(t, "udp", 3) == (1024, True)


def test_later_add_overwrites_or_keeps_max_iterations(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 100, max_iterations=5)
    t.pool4_add("udp", "192.0.2.2/32", 1, 100)              # omitted: kept (§3.3)
    assert iterations(t, "udp") == (5, False)
    t.pool4_add("udp", "192.0.2.3/32", 1, 100, max_iterations=9)
    assert iterations(t, "udp") == (9, False)


def _walker(mk, lo, hi, max_iterations=None, proto="udp"):
    """A set 192.0.2.1#lo-hi with f-args = dst address only (every packet of these
    tests goes to PEER4: F is constant). Returns (t, candidates, last port handed out)."""
    t = mk(f_args=F_DST_ADDR)
    kw = {} if max_iterations is None else {"max_iterations": max_iterations}
    t.pool4_add(proto, "192.0.2.1/32", lo, hi, **kw)
    cands = candidates([("192.0.2.1", lo, hi)])
    first = mapped(t, proto, client(0), 1000)
    return t, cands, first


def test_max_iterations_n_examines_exactly_n_candidates(mk, watchdog):
    t, cands, p0 = _walker(mk, 1, 100, max_iterations=10)
    # The next allocation starts at succ(p0): occupy 9 candidates, the 10th is free.
    occupy(t, "udp", [succ(cands, p0, k) for k in range(1, 10)])
    p1 = mapped(t, "udp", client(1), 1000)
    assert p1 == succ(cands, p0, 10)
    # The next start is succ(p1): occupy 10 candidates, the 11th is free -> exhausted.
    occupy(t, "udp", [succ(cands, p1, k) for k in range(1, 11)], net="2001:db8:6::")
    dropped(t, "udp", client(2), 1000, "JSTAT_BIB6_NOT_FOUND")
    assert len(t.bib_entries("udp")) == 2 + 9 + 10
    # Infinity: the same walk now reaches the free candidate.
    t.pool4_add("udp", "192.0.2.1/32", 1, 100, max_iterations=0)
    assert mapped(t, "udp", client(3), 1000) == succ(cands, p1, 11)


def test_auto_limit_1024(mk, watchdog):
    t, cands, p0 = _walker(mk, 1, 5000)                     # T = 5000: auto = 1024
    occupy(t, "udp", [succ(cands, p0, k) for k in range(1, 1024)])
    p1 = mapped(t, "udp", client(1), 1000)
    assert p1 == succ(cands, p0, 1024)                      # the 1024th candidate
    occupy(t, "udp", [succ(cands, p1, k) for k in range(1, 1025)], net="2001:db8:6::")
    dropped(t, "udp", client(2), 1000, "JSTAT_BIB6_NOT_FOUND")
    t.pool4_add("udp", "192.0.2.1/32", 1, 5000, max_iterations=0)
    assert mapped(t, "udp", client(3), 1000) == succ(cands, p1, 1025)


def test_next_ephemeral_grows_by_the_candidates_examined(mk):
    """§4 step 2: after a walk of k candidates the next allocation starts k further,
    not 1 further: a hole opened behind the new start is not taken."""
    t, cands, p0 = _walker(mk, 1, 1000)
    occupy(t, "udp", [succ(cands, p0, k) for k in range(1, 6)])
    assert mapped(t, "udp", client(1), 1000) == succ(cands, p0, 6)     # 6 examined
    a4, p4 = succ(cands, p0, 3)
    t.bib_remove("udp", client(3, "2001:db8:5::"), 7, a4, p4)          # a hole at +3
    assert mapped(t, "udp", client(2), 1000) == succ(cands, p0, 7)


def test_failed_walk_also_advances_next_ephemeral(mk):
    t, cands, p0 = _walker(mk, 1, 1000, max_iterations=3)
    occupy(t, "udp", [succ(cands, p0, k) for k in range(1, 4)])
    dropped(t, "udp", client(1), 1000, "JSTAT_BIB6_NOT_FOUND")           # 3 examined
    a4, p4 = succ(cands, p0, 2)
    t.bib_remove("udp", client(2, "2001:db8:5::"), 7, a4, p4)          # a hole at +2
    assert mapped(t, "udp", client(2), 1000) == succ(cands, p0, 4)


def test_infinity_walks_the_whole_set_once(mk, watchdog):
    t, cands, p0 = _walker(mk, 1, 300, max_iterations=0)
    occupy(t, "udp", [succ(cands, p0, k) for k in range(1, 299)])
    assert mapped(t, "udp", client(1), 1000) == succ(cands, p0, 299)   # the very last one
    # Now all 300 are taken: a full turn and a drop, not an endless loop.
    dropped(t, "udp", client(2), 1000, "JSTAT_BIB6_NOT_FOUND")
    assert len(t.bib_entries("udp")) == 300


@pytest.mark.parametrize("proto", PROTOS)
def test_exhaustion_with_few_candidates(mk, proto, watchdog):
    t = mk(f_args=0b1111)
    t.pool4_add(proto, "192.0.2.1/32", 10, 14)
    got = {mapped(t, proto, client(i), 500 + i, dst4="198.51.100.%d" % (i + 1))
           for i in range(5)}
    assert got == {("192.0.2.1", p) for p in range(10, 15)}
    dropped(t, proto, client(9), 509, "JSTAT_BIB6_NOT_FOUND")
    assert t.counter("JSTAT_BIB_ENTRIES") == 5


# ====================================================== §4 RFC 6056 algorithm 3
@pytest.mark.parametrize("proto", PROTOS)
def test_allocations_stay_inside_the_set_and_off_used_ports(mk, proto, watchdog):
    t = mk(f_args=0b1111)
    ranges = [("192.0.2.1", 10, 19), ("192.0.2.1", 30, 39), ("192.0.2.9", 5, 9)]
    for a, lo, hi in ranges:
        t.pool4_add(proto, a + "/32", lo, hi)
    t.pool4_add(proto, "192.0.2.5/32", 1, 100, mark=1)     # another set: never used
    statics = [("192.0.2.1", 12), ("192.0.2.1", 35), ("192.0.2.9", 7)]
    occupy(t, proto, statics)
    cands = set(candidates(ranges))
    got = set()
    for i in range(len(cands) - len(statics)):
        ta = mapped(t, proto, client(i), 4000 + i, dst4="203.0.113.%d" % (i + 1), dport=1 + i)
        assert ta in cands and ta not in statics and ta not in got, ta
        got.add(ta)
    assert got == cands - set(statics)
    dropped(t, proto, client(99), 4099, "JSTAT_BIB6_NOT_FOUND")
    v4 = [(a4, p4) for _, _, a4, p4, _ in t.bib_entries(proto)]
    assert len(v4) == len(set(v4)) == len(cands)


def test_same_destination_gives_adjacent_masks(mk):
    """f-args = dst address only: every client talking to one destination starts
    from the same point; next_ephemeral moves each allocation one further."""
    t = mk(f_args=F_DST_ADDR)
    ranges = [("192.0.2.1", 1, 3), ("192.0.2.2", 1, 65535)]
    for a, lo, hi in ranges:
        t.pool4_add("udp", a + "/32", lo, hi)
    cands = candidates(ranges)
    prev = mapped(t, "udp", client(0), 1111)
    for i in range(1, 20):
        cur = mapped(t, "udp", client(i, "2001:db8:%x::" % i), 2000 + i, dport=80)
        assert cur == succ(cands, prev), (prev, cur)
        prev = cur


def test_adjacent_masks_wrap_around_the_set(mk):
    t = mk(f_args=F_DST_ADDR)
    ranges = [("192.0.2.1", 1, 3), ("192.0.2.2", 7, 8)]
    for a, lo, hi in ranges:
        t.pool4_add("icmp", a + "/32", lo, hi)
    cands = candidates(ranges)
    seq = [mapped(t, "icmp", client(i), 50 + i) for i in range(5)]
    assert seq == [succ(cands, seq[0], k) for k in range(5)]
    assert set(seq) == set(cands)


def _spread(ports, cands):
    """How many consecutive allocations were adjacent candidates."""
    return sum(1 for a, b in zip(ports, ports[1:]) if succ(cands, a) == b)


def test_source_address_bit_spreads_sources(mk):
    t = mk(f_args=F_SRC_ADDR)
    t.pool4_add("udp", "192.0.2.1/32", 1, 65535)
    cands = candidates([("192.0.2.1", 1, 65535)])
    ports = [mapped(t, "udp", client(i, "2001:db8:%x::" % (i + 1)), 1000) for i in range(10)]
    assert _spread(ports, cands) <= 1, ports      # random starting points, not a run


def test_source_address_bit_same_source_same_start(mk):
    """f-args = src address: other ports of the same client and other destinations
    keep the starting point (they are not inputs of F)."""
    t = mk(f_args=F_SRC_ADDR)
    t.pool4_add("udp", "192.0.2.1/32", 1, 65535)
    cands = candidates([("192.0.2.1", 1, 65535)])
    ports = [mapped(t, "udp", client(1), 1000 + i, dst4="198.51.100.%d" % (i + 1), dport=10 + i)
             for i in range(6)]
    assert _spread(ports, cands) == 5, ports


def test_default_f_args_ignore_the_source_port(mk):
    t = mk()                                       # f-args 11: src addr, dst addr, dst port
    t.pool4_add("tcp", "192.0.2.1/32", 1, 65535)
    cands = candidates([("192.0.2.1", 1, 65535)])
    ports = [mapped(t, "tcp", client(1), 3000 + 7 * i) for i in range(6)]
    assert _spread(ports, cands) == 5, ports
    # ...but not the destination port.
    ports = [mapped(t, "tcp", client(1), 5000 + i, dport=100 + i) for i in range(8)]
    assert _spread(ports, cands) <= 1, ports


def test_source_port_bit(mk):
    t = mk(f_args=F_SRC_PORT)
    t.pool4_add("udp", "192.0.2.1/32", 1, 65535)
    cands = candidates([("192.0.2.1", 1, 65535)])
    same = [mapped(t, "udp", client(i), 4242, dst4="198.51.100.%d" % (i + 1)) for i in range(6)]
    assert _spread(same, cands) == 5, same
    other = [mapped(t, "udp", client(10 + i), 5000 + 13 * i) for i in range(8)]
    assert _spread(other, cands) <= 1, other


def test_destination_port_bit(mk):
    t = mk(f_args=F_DST_PORT)
    t.pool4_add("udp", "192.0.2.1/32", 1, 65535)
    cands = candidates([("192.0.2.1", 1, 65535)])
    same = [mapped(t, "udp", client(i), 100 + i, dst4="203.0.113.%d" % (i + 1), dport=53)
            for i in range(6)]
    assert _spread(same, cands) == 5, same
    other = [mapped(t, "udp", client(20 + i), 100, dport=1000 + 17 * i) for i in range(8)]
    assert _spread(other, cands) <= 1, other


def test_icmp_identifier_is_the_port_input(mk):
    t = mk(f_args=F_SRC_PORT | F_DST_PORT)
    t.pool4_add("icmp", "192.0.2.1/32", 0, 65535)
    cands = candidates([("192.0.2.1", 0, 65535)])
    same = [mapped(t, "icmp", client(i), 777, dst4="203.0.113.%d" % (i + 1)) for i in range(6)]
    assert _spread(same, cands) == 5, same
    other = [mapped(t, "icmp", client(20 + i), 900 + 31 * i) for i in range(8)]
    assert _spread(other, cands) <= 1, other


def test_same_inputs_restart_after_expiry(mk):
    """The BIB entry of a client expires; its next packet (same F inputs) is
    allocated the candidate after its old one."""
    t = mk(f_args=F_SRC_ADDR | F_DST_ADDR, udp_timeout=120_000)
    t.pool4_add("udp", "192.0.2.1/32", 1, 65535)
    cands = candidates([("192.0.2.1", 1, 65535)])
    a = mapped(t, "udp", client(1), 1000, now=0)
    t.expire(130_000)
    assert t.bib_entries("udp") == []
    b = mapped(t, "udp", client(1), 1000, now=131_000)
    assert b == succ(cands, a)


# ====================================================== endpoint-independent mapping
@pytest.mark.parametrize("proto", PROTOS)
def test_endpoint_independent_mapping(mk, proto):
    t = mk(f_args=0b1111)
    t.pool4_add(proto, "192.0.2.0/29", 1, 65535)
    got = {mapped(t, proto, client(1), 1234, dst4="198.51.100.%d" % i, dport=i) for i in range(1, 9)}
    assert len(got) == 1
    a4, p4 = got.pop()
    assert bib(t, proto) == [(client(1), 1234, a4, p4, False)]
    assert len(t.sessions(proto, 0)) == 8
    # Any peer may reach the client through it (no ADF).
    verdict, reason, outs = send(t, pkt4(proto, a4, p4, src4="203.0.113.50", sport=9))
    assert verdict == Verdict.TRANSLATED, reason
    # (TCP: a non-SYN from a new peer is translated without a session, §7.)
    assert len(t.sessions(proto, 0)) == (8 if proto == "tcp" else 9)
    assert pl.parse(outs[0][1]).dst == client(1)


def test_static_entry_is_used_by_its_client(mk):
    t = mk()
    t.pool4_add("udp", "192.0.2.1/32", 1, 3000)
    t.bib_add("udp", client(1), 2000, "192.0.2.1", 2500)
    assert mapped(t, "udp", client(1), 2000) == ("192.0.2.1", 2500)
    assert bib(t, "udp") == [(client(1), 2000, "192.0.2.1", 2500, True)]


# ====================================================== §3.5 empty pool4
EMPTY4 = "192.0.2.2"


@pytest.mark.parametrize("proto", PROTOS)
def test_empty_pool4_uses_61001_65535(mk, proto):
    t = mk(empty_pool4_addr=EMPTY4)
    assert entries(t) == []
    for mark in (0, 12345):                                # marks don't matter
        a4, p4 = mapped(t, proto, client(mark), 1000, mark=mark)
        assert a4 == EMPTY4 and 61001 <= p4 <= 65535
    verdict, reason, outs = send(t, pkt4(proto, a4, p4))
    assert verdict == Verdict.TRANSLATED, reason
    assert pl.parse(outs[0][1]).dst == client(12345)


@pytest.mark.parametrize("proto", ("udp", "icmp"))
def test_empty_pool4_ipv4_membership(mk, proto):
    t = mk(empty_pool4_addr=EMPTY4)
    verdict, reason, _ = send(t, pkt4(proto, EMPTY4, 61001))
    assert (verdict, reason) == (Verdict.PASS, COUNTER_IDS["JSTAT_BIB4_NOT_FOUND"])
    verdict, reason, _ = send(t, pkt4(proto, EMPTY4, 61000))
    assert (verdict, reason) == (Verdict.PASS, COUNTER_IDS["JSTAT_POOL4_MISMATCH"])


def test_empty_pool4_adjacent_and_wrapping(mk):
    t = mk(empty_pool4_addr=EMPTY4, f_args=F_DST_ADDR)
    cands = candidates([(EMPTY4, 61001, 65535)])
    seq = [mapped(t, "udp", client(i), 1000) for i in range(6)]
    assert seq == [succ(cands, seq[0], k) for k in range(6)]


def test_empty_pool4_next_ephemeral_grows_by_the_candidates_examined(mk):
    t = mk(empty_pool4_addr=EMPTY4, f_args=F_DST_ADDR)
    cands = candidates([(EMPTY4, 61001, 65535)])
    p0 = mapped(t, "udp", client(0), 1000)
    occupy(t, "udp", [succ(cands, p0, k) for k in range(1, 6)])
    assert mapped(t, "udp", client(1), 1000) == succ(cands, p0, 6)     # 6 examined
    a4, p4 = succ(cands, p0, 3)
    t.bib_remove("udp", client(3, "2001:db8:5::"), 7, a4, p4)          # a hole at +3
    assert mapped(t, "udp", client(2), 1000) == succ(cands, p0, 7)


def test_static_entries_must_lie_in_pool4(mk):
    t = mk(empty_pool4_addr=EMPTY4)
    t.bib_add("udp", client(1), 5, EMPTY4, 61001)                 # empty pool4: >= 61001
    with pytest.raises(Exception):
        t.bib_add("udp", client(2), 5, EMPTY4, 61000)
    t.pool4_add("udp", "192.0.2.1/32", 100, 200)
    t.bib_add("udp", client(3), 5, "192.0.2.1", 150)
    for a4, p4 in (("192.0.2.1", 99), ("192.0.2.9", 150)):
        with pytest.raises(Exception):
            t.bib_add("udp", client(4), 5, a4, p4)
    with pytest.raises(Exception):
        t.bib_add("tcp", client(4), 5, "192.0.2.1", 150)           # another protocol
    assert [e[2:4] for e in bib(t, "udp") if e[0] == client(3)] == [("192.0.2.1", 150)]


def test_empty_pool4_has_4535_candidates_and_no_1024_cap(mk, watchdog):
    """Random starting points: the last allocations walk far more than 1024
    candidates, which the empty pool allows (§3.5); the 4536th finds none."""
    t = mk(empty_pool4_addr=EMPTY4, f_args=0b1111)
    got = set()
    for i in range(4535):
        a4, p4 = mapped(t, "udp", client(i, "2001:db8:%x::" % (i + 1)), 1000 + i % 50)
        assert a4 == EMPTY4 and 61001 <= p4 <= 65535
        got.add(p4)
    assert len(got) == 4535
    dropped(t, "udp", client(1, "2001:db8:ffff::"), 1, "JSTAT_BIB6_NOT_FOUND")
    assert t.counter("JSTAT_BIB_ENTRIES") == 4535


def test_empty_pool4_ends_with_the_first_entry_of_any_protocol(mk):
    t = mk(empty_pool4_addr=EMPTY4)
    assert mapped(t, "udp", client(1), 1000)[0] == EMPTY4
    t.pool4_add("tcp", "192.0.2.1/32", 1, 100)
    dropped(t, "udp", client(2), 1000, "JSTAT_MASK_DOMAIN_NOT_FOUND")
    dropped(t, "icmp", client(2), 1000, "JSTAT_MASK_DOMAIN_NOT_FOUND")
    assert mapped(t, "tcp", client(2), 1000)[0] == "192.0.2.1"
    t.pool4_remove("tcp", "192.0.2.1/32", 1, 100)
    assert entries(t) == []
    a4, p4 = mapped(t, "icmp", client(3), 1000)
    assert a4 == EMPTY4 and p4 >= 61001
