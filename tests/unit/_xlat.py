"""Shared fixtures/helpers for the RFC 7915 translation-core tests.

Topology used throughout (names are the behaviour.md terms):
    CLIENT6:C_PORT  (src6)  <->  POOL4:P4_PORT (src4)        BIB mapping
    PEER6 = pool6 + PEER4    (dst6)  <->  PEER4:PEER_PORT (dst4)
6->4 packets are translated with map (POOL4, P4_PORT); 4->6 with (CLIENT6, C_PORT).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pktlib as pl  # noqa: E402

pipeline = pytest.importorskip("jool._fast.pipeline")
from jool._fast.stats import COUNTER_IDS, COUNTER_NAMES  # noqa: E402

Translator = pipeline.Translator
Verdict = pipeline.Verdict
OutKind = pipeline.OutKind

POOL6 = "64:ff9b::/96"
CLIENT6, C_PORT = "2001:db8::10", 5000
POOL4, P4_PORT = "192.0.2.2", 6000
PEER4, PEER_PORT = "198.51.100.7", 80
PEER6 = pl.embed(POOL6, PEER4)
ROUTER4 = "203.0.113.9"
ROUTER6 = "2001:db8:1::99"
OWN4, OWN6 = "192.0.2.254", "2001:db8::fe"


def make(**kw):
    args = dict(pool6=POOL6, own4=OWN4, own6=OWN6)
    args.update(kw)
    return Translator(**args)


def name_of(reason):
    return COUNTER_NAMES[reason - 1] if reason else "0"


class Result:
    """translate() result plus counter deltas, with parsed outputs."""

    def __init__(self, t, pkt, map_addr, map_port, partial_csum=False):
        before = [int(x) for x in t.counters]
        self.verdict, self.reason, outs = t.translate(pkt, map_addr, map_port,
                                                      partial_csum=partial_csum)
        after = [int(x) for x in t.counters]
        self.delta = {COUNTER_NAMES[i - 1]: after[i] - before[i]
                      for i in range(1, len(after)) if after[i] != before[i]}
        self.outputs = outs
        self.kinds = [k for k, _ in outs]
        self.raws = [bytes(b) for _, b in outs]
        self.pkts = [pl.parse(b) for b in self.raws]

    @property
    def pkt(self):
        assert len(self.pkts) == 1, "expected one output, got %d (%s)" % (
            len(self.pkts), self)
        return self.pkts[0]

    def __repr__(self):
        return "Result(verdict=%r, reason=%s, kinds=%r, delta=%r)" % (
            self.verdict, name_of(self.reason), self.kinds, self.delta)


def xl(t, pkt, map_addr=None, map_port=None, partial_csum=False):
    """Translate one packet; default mapping chosen by the packet's family."""
    v = pkt[0] >> 4
    if map_addr is None:
        map_addr = POOL4 if v == 6 else CLIENT6
    if map_port is None:
        map_port = P4_PORT if v == 6 else C_PORT
    return Result(t, pkt, map_addr, map_port, partial_csum)


def expect_translated(r, kind=None, n=1):
    assert r.verdict == Verdict.TRANSLATED, r
    assert r.reason == 0, r
    assert len(r.outputs) == n, r
    if kind is not None:
        assert all(k == kind for k in r.kinds), r
    assert r.delta.get("JSTAT_SUCCESS") == 1, r
    return r.pkts[0] if n == 1 else r.pkts


def expect_verdict(r, verdict, counter):
    assert r.verdict == verdict, r
    assert r.reason == COUNTER_IDS[counter], r
    assert r.delta.get(counter, 0) == 1, r
    assert "JSTAT_SUCCESS" not in r.delta, r
    if verdict in (Verdict.DROP, Verdict.PASS):
        assert r.outputs == [] or len(r.outputs) == 0, r


def expect_icmp_error(r, counter, kind):
    """Dropped with an ICMP error to the source; returns the parsed error."""
    assert r.verdict == Verdict.DROP_ICMP, r
    assert r.reason == COUNTER_IDS[counter], r
    assert r.delta.get(counter, 0) == 1, r
    assert len(r.outputs) == 1 and r.kinds[0] == kind, r
    p = r.pkts[0]
    assert pl.valid(p), "generated ICMP error has a bad checksum"
    return p


def assert_valid(p):
    assert pl.ip_csum_ok(p), "bad IPv4 header checksum"
    if not p.is_fragment:
        assert pl.l4_csum_ok(p), "bad L4 checksum (error %#x)" % pl.csum_error(p)


# ------------------------------------------------------------- packet makers
def v6(l4, src=CLIENT6, dst=PEER6, **kw):
    return pl.ipv6(src, dst, l4, **kw)


def v4(l4, src=PEER4, dst=POOL4, **kw):
    return pl.ipv4(src, dst, l4, **kw)


def udp6(payload=b"hello", **kw):
    return v6(pl.udp(C_PORT, PEER_PORT, payload), **kw)


def udp4(payload=b"hello", **kw):
    return v4(pl.udp(PEER_PORT, P4_PORT, payload), **kw)


def inner6_of_46():
    """The IPv6 packet that an IPv6-side error (6->4 direction) quotes: the
    translation of a peer packet, PEER6:PEER_PORT -> CLIENT6:C_PORT."""
    return pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"x" * 20), hlim=30)


def inner4_of_64():
    """The IPv4 packet that an IPv4-side error (4->6 direction) quotes: the
    translation of a client packet, POOL4:P4_PORT -> PEER4:PEER_PORT."""
    return pl.ipv4(POOL4, PEER4, pl.udp(P4_PORT, PEER_PORT, b"x" * 20), ttl=30, ident=77)


def err6(type_, code, quoted=None, src=ROUTER6, **kw):
    """ICMPv6 error travelling 6->4 (to the peer's pool6 address)."""
    q = inner6_of_46() if quoted is None else quoted
    return pl.ipv6(src, PEER6, pl.icmp6_error(type_, code, q, **{
        k: v for k, v in kw.items() if k in ("mtu", "pointer", "ext", "length", "csum_delta")}),
        **{k: v for k, v in kw.items() if k in ("hlim", "tc")})


def err4(type_, code, quoted=None, src=ROUTER4, **kw):
    """ICMPv4 error travelling 4->6 (to the pool4 address)."""
    q = inner4_of_64() if quoted is None else quoted
    return pl.ipv4(src, POOL4, pl.icmp4_error(type_, code, q, **{
        k: v for k, v in kw.items() if k in ("mtu", "pointer", "ext", "length", "csum_delta")}),
        **{k: v for k, v in kw.items() if k in ("ttl", "tos")})


@pytest.fixture
def t():
    tr = make()
    yield tr
    assert pipeline.bounds_violations() == 0
