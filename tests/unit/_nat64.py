"""Shared helpers for the stateful NAT64 tests (docs/stateful-api.md).

Topology (behaviour.md terms):
    CLIENT6:C_PORT (src6)  <->  POOL4:<mask> (src4)          BIB entry
    PEER6 = pool6 + PEER4 (dst6)  <->  PEER4:PEER_PORT (dst4)

Every test builds its own Tables (small capacity) and Translator through the `nat`
fixture, with pool4 = 192.0.2.2 ports 1-3000 for tcp, udp and icmp. Time is always
given explicitly (now_ms), so timer tests are exact and instant.
"""
import gc
import ipaddress
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pktlib as pl  # noqa: E402

tables_mod = pytest.importorskip("jool._fast.tables")
pipeline = pytest.importorskip("jool._fast.pipeline")
from jool._fast.stats import COUNTER_IDS, COUNTER_NAMES  # noqa: E402

Tables = tables_mod.Tables
TcpState = getattr(tables_mod, "TcpState", None)
# stateful-api.md: CLOSED=0 ... TRANS=7
STATE_NAMES = ("CLOSED", "V4_INIT", "V6_INIT", "ESTABLISHED", "V4_FIN_RCV", "V6_FIN_RCV",
               "V4_FIN_V6_FIN_RCV", "TRANS")
Translator = pipeline.Translator
Verdict = pipeline.Verdict
OutKind = pipeline.OutKind

POOL6 = "64:ff9b::/96"
POOL4 = "192.0.2.2"
POOL4_MIN, POOL4_MAX = 1, 3000
OWN4, OWN6 = "192.0.2.1", "2001:db8::1"

CLIENT6, C_PORT = "2001:db8::10", 5000
CLIENT6B, C_PORT_B = "2001:db8::20", 6000
PEER4, PEER_PORT = "198.51.100.7", 80
PEER4B = "203.0.113.50"
PEER6 = pl.embed(POOL6, PEER4)
PEER6B = pl.embed(POOL6, PEER4B)
POOL4_AS6 = pl.embed(POOL6, POOL4)        # hairpinning destination
ROUTER4 = "203.0.113.9"
ROUTER6 = "2001:db8:1::99"

# Timeouts (ms): the defaults of spec/globals.md, all different from each other.
EST = 7_200_000
TRANS = 240_000
UDP_TO = 300_000
ICMP_TO = 60_000
SYN4 = 6_000

# Pool4 port used by static BIB entries (inside 1-3000).
STATIC_PORT = 2000


def name_of(reason):
    return COUNTER_NAMES[reason - 1] if reason else "0"


def ip(a):
    """Normalise an address (str / bytes / ipaddress object) to its canonical str."""
    if isinstance(a, (bytes, bytearray)):
        if len(a) == 4:
            return str(ipaddress.IPv4Address(bytes(a)))
        if len(a) == 16:
            return str(ipaddress.IPv6Address(bytes(a)))
    return str(ipaddress.ip_address(str(a)))


def state_name(v):
    """TcpState name of a session's state, whatever form the API gives it in."""
    if v is None:
        return None
    if isinstance(v, str):
        return v.split(".")[-1].upper()
    if hasattr(v, "name"):
        return v.name
    return STATE_NAMES[int(v)]


class Sess:
    """A session dict from Translator.sessions(), normalised."""

    def __init__(self, d):
        self.raw = d
        self.src6, self.dst6 = ip(d["src6"]), ip(d["dst6"])
        self.src4, self.dst4 = ip(d["src4"]), ip(d["dst4"])
        self.sport6, self.dport6 = int(d["sport6"]), int(d["dport6"])
        self.sport4, self.dport4 = int(d["sport4"]), int(d["dport4"])
        self.state = state_name(d.get("state"))
        self.expires_in_ms = int(d["expires_in_ms"])

    def __repr__(self):
        return "Sess(%s#%d|%s#%d|%s#%d|%s#%d %s exp=%d)" % (
            self.src6, self.sport6, self.dst6, self.dport6, self.src4, self.sport4,
            self.dst4, self.dport4, self.state, self.expires_in_ms)


class Result:
    """translate() result plus counter deltas, with parsed outputs."""

    def __init__(self, t, pkt, now_ms, mark=0):
        before = [int(x) for x in t.counters]
        self.verdict, self.reason, outs = t.translate(pkt, now_ms=now_ms, mark=mark)
        after = [int(x) for x in t.counters]
        self.delta = {COUNTER_NAMES[i - 1]: after[i] - before[i]
                      for i in range(1, len(after)) if after[i] != before[i]}
        self.outputs = list(outs)
        self.kinds = [int(k) for k, _ in self.outputs]
        self.raws = [bytes(b) for _, b in self.outputs]
        self.pkts = [pl.parse(b) for b in self.raws]

    @property
    def pkt(self):
        assert len(self.pkts) == 1, "expected one output, got %d (%s)" % (
            len(self.pkts), self)
        return self.pkts[0]

    def __repr__(self):
        return "Result(verdict=%r, reason=%s, kinds=%r, delta=%r)" % (
            self.verdict, name_of(self.reason), self.kinds, self.delta)


class Nat64:
    """A Translator on its own Tables, plus conveniences."""

    def __init__(self, tables, **kw):
        self.tables = tables
        args = dict(tables=tables, pool6=POOL6, own4=OWN4, own6=OWN6,
                    tcp_est_timeout=EST, tcp_trans_timeout=TRANS,
                    udp_timeout=UDP_TO, icmp_timeout=ICMP_TO)
        args.update(kw)
        self.t = Translator(**args)
        for proto in ("tcp", "udp", "icmp"):
            self.t.pool4_add(proto, POOL4 + "/32", POOL4_MIN, POOL4_MAX)

    # ------------------------------------------------------------- packets
    def send(self, pkt, now, mark=0):
        return Result(self.t, pkt, now, mark)

    def expire(self, now):
        outs = self.t.expire(now)
        return [(int(k), pl.parse(bytes(b))) for k, b in outs]

    # -------------------------------------------------------------- tables
    def sessions(self, proto, now):
        return [Sess(d) for d in self.t.sessions(proto, now)]

    def session(self, proto, now, **match):
        """The only session matching the given normalised fields (None if none)."""
        found = [s for s in self.sessions(proto, now)
                 if all(getattr(s, k) == (ip(v) if k in ("src6", "dst6", "src4", "dst4")
                                          else v) for k, v in match.items())]
        assert len(found) <= 1, found
        return found[0] if found else None

    def bib(self, proto):
        """[(v6addr, v6port, v4addr, v4port, is_static)] normalised."""
        return [(ip(a6), int(p6), ip(a4), int(p4), bool(st))
                for a6, p6, a4, p4, st in self.t.bib_entries(proto)]

    def bib_of(self, proto, addr6=CLIENT6, port6=C_PORT):
        found = [b for b in self.bib(proto) if b[0] == ip(addr6) and b[1] == port6]
        assert len(found) <= 1, found
        return found[0] if found else None

    def mask(self, proto, addr6=CLIENT6, port6=C_PORT):
        b = self.bib_of(proto, addr6, port6)
        assert b is not None, "no %s BIB entry for %s#%d" % (proto, addr6, port6)
        return b[3]

    def counter(self, name):
        return int(self.t.counter(name))

    def gauges(self):
        return self.counter("JSTAT_BIB_ENTRIES"), self.counter("JSTAT_SESSIONS")

    def close(self):
        self.t = None


@pytest.fixture
def tables():
    tb = Tables.create(capacity=4096)
    try:
        yield tb
    finally:
        gc.collect()
        try:
            tb.close()
        finally:
            tb.unlink()


@pytest.fixture
def make_nat(tables):
    """Factory: make_nat(**translator_options) -> Nat64 on this test's tables."""
    made = []

    def factory(**kw):
        n = Nat64(tables, **kw)
        made.append(n)
        return n

    yield factory
    for n in made:
        n.close()
    made.clear()
    gc.collect()
    assert pipeline.bounds_violations() == 0
    check = getattr(tables, "check", None)
    if check is not None:
        assert check() == [], "table invariants broken"


@pytest.fixture
def nat(make_nat):
    return make_nat()


# ------------------------------------------------------------ packet makers
def tcp6(flags, src=CLIENT6, sport=C_PORT, dst=PEER6, dport=PEER_PORT, seq=100, ack=0,
         payload=b"", hlim=64, window=8192):
    return pl.ipv6(src, dst, pl.tcp(sport, dport, seq=seq, ack=ack, flags=flags,
                                    window=window, payload=payload), hlim=hlim)


def tcp4(flags, dport, src=PEER4, sport=PEER_PORT, dst=POOL4, seq=500, ack=0, payload=b"",
         ttl=64, window=8192):
    return pl.ipv4(src, dst, pl.tcp(sport, dport, seq=seq, ack=ack, flags=flags,
                                    window=window, payload=payload), ttl=ttl)


def udp6(src=CLIENT6, sport=C_PORT, dst=PEER6, dport=PEER_PORT, payload=b"hello", hlim=64):
    return pl.ipv6(src, dst, pl.udp(sport, dport, payload), hlim=hlim)


def udp4(dport, src=PEER4, sport=PEER_PORT, dst=POOL4, payload=b"world", ttl=64):
    return pl.ipv4(src, dst, pl.udp(sport, dport, payload), ttl=ttl)


def echo6(ident, src=CLIENT6, dst=PEER6, seq=1, reply=False, payload=b"ping"):
    return pl.ipv6(src, dst, pl.icmp6_echo(ident, seq, payload, reply=reply))


def echo4(ident, src=PEER4, dst=POOL4, seq=1, reply=False, payload=b"ping"):
    return pl.ipv4(src, dst, pl.icmp4_echo(ident, seq, payload, reply=reply))


# ------------------------------------------------------------ expectations
def expect_translated(r, family=None):
    """Translated into exactly one packet; returns it parsed."""
    assert r.verdict == Verdict.TRANSLATED, r
    assert r.reason == 0, r
    assert len(r.outputs) == 1, r
    if family is not None:
        assert r.kinds[0] == (OutKind.IPV4 if family == 4 else OutKind.IPV6), r
    assert r.delta.get("JSTAT_SUCCESS") == 1, r
    p = r.pkts[0]
    assert_valid(p)
    return p


def expect_verdict(r, verdict, counter):
    assert r.verdict == verdict, r
    assert r.reason == COUNTER_IDS[counter], r
    assert r.delta.get(counter, 0) == 1, r
    assert "JSTAT_SUCCESS" not in r.delta, r
    if verdict in (Verdict.DROP, Verdict.PASS):
        assert len(r.outputs) == 0, r


def expect_icmp4_error(r, counter, type_, code, to):
    """Dropped with an ICMPv4 error to `to`; returns the parsed error."""
    assert r.verdict == Verdict.DROP_ICMP, r
    assert r.reason == COUNTER_IDS[counter], r
    assert r.delta.get(counter, 0) == 1, r
    assert "JSTAT_SUCCESS" not in r.delta, r
    assert len(r.outputs) == 1 and r.kinds[0] == OutKind.ICMP4_ERROR, r
    e = r.pkts[0]
    assert e.version == 4 and e.proto == pl.ICMP, e
    assert (e.type, e.code) == (type_, code), (e.type, e.code)
    assert e.dst == to, e
    assert pl.valid(e), "generated ICMP error has a bad checksum"
    return e


def expect_held(r, counter):
    """An IPv4 SYN that was stored (simultaneous open type 1 / ADF type 2): not
    translated, nothing sent, not handed back to the host, the storage counter
    increments."""
    assert r.verdict not in (Verdict.TRANSLATED, Verdict.PASS, Verdict.DROP_ICMP), r
    assert len(r.outputs) == 0, r
    assert "JSTAT_SUCCESS" not in r.delta, r
    assert r.delta.get(counter, 0) == 1, r


def assert_valid(p):
    assert pl.ip_csum_ok(p), "bad IPv4 header checksum"
    if not p.is_fragment:
        assert pl.l4_csum_ok(p), "bad L4 checksum (error %#x)" % pl.csum_error(p)


def check_64(p, mask, proto=pl.TCP, dst=PEER4, dport=PEER_PORT, src=POOL4):
    """A 6->4 translation of the client's packet."""
    assert p.version == 4 and p.proto == proto, p
    assert (p.src, p.dst) == (src, dst), p
    assert (p.sport, p.dport) == (mask, dport), p


def check_46(p, proto=pl.TCP, src=PEER6, sport=PEER_PORT, dst=CLIENT6, dport=C_PORT):
    """A 4->6 translation of the peer's packet."""
    assert p.version == 6 and p.proto == proto, p
    assert (p.src, p.dst) == (src, dst), p
    assert (p.sport, p.dport) == (sport, dport), p


def event_kind(kind):
    """'add' or 'remove' for a session_events() kind, whatever its representation
    (BIB entries' events: 'bib-add', 'bib-remove')."""
    s = (getattr(kind, "name", None) or str(kind)).lower()
    if s.startswith("bib"):
        return "bib-" + event_kind(s[3:])
    if any(w in s for w in ("add", "creat", "new", "open")):
        return "add"
    if any(w in s for w in ("rem", "del", "expir", "forgot", "close", "destroy")):
        return "remove"
    return s
