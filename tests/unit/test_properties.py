"""Property tests of the translation core (hypothesis).

Random valid UDP/TCP/ICMP-echo packets translate, in both directions, into packets
that parse (tests/pktlib.py) with valid IP and L4 checksums, carry the mapped
addresses/ports, and keep everything RFC 7915 says to keep.  Round trips:

* 6->4->6: the IPv4 result is turned into its reply (addresses and ports swapped,
  which leaves every checksum unchanged), translated 4->6 with the mapping
  (original IPv6 source, original port), and swapped back.  Expected: the original
  packet, except hop limit - 2 (one per translation), flow label 0 (4->6 always
  writes 0) and no extension headers (6->4 drops them); the L4 checksum field may
  differ only in representation (0x0000 vs 0xFFFF), so it is checked for validity
  instead of compared.
* 4->6->4 likewise: TTL - 2, IPv4 options gone (IHL 5), Identification and DF
  chosen by the translator (DF = total length > 1260 for an unfragmented IPv6
  packet), header checksum recomputed, a zero UDP checksum replaced by a real one.
"""
import ipaddress
import os
import random
import struct
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pktlib as P  # noqa: E402

pl = pytest.importorskip("jool._fast.pipeline")
from jool._fast.stats import COUNTER_NAMES  # noqa: E402

TRANSLATED = int(pl.Verdict.TRANSLATED)
DROP_ICMP = int(pl.Verdict.DROP_ICMP)
K_IPV4, K_IPV6 = int(pl.OutKind.IPV4), int(pl.OutKind.IPV6)
K_ICMP4_ERR, K_ICMP6_ERR = int(pl.OutKind.ICMP4_ERROR), int(pl.OutKind.ICMP6_ERROR)

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# pool6 prefixes of every RFC 6052 length (none overlaps the client ranges below).
POOL6S = ["64:ff9b::/96", "64:ff9b:1::/48", "2001:db8:6400::/40", "3fff:1::/32",
          "3fff:2:3:400::/56", "3fff:5:6:7::/64"]

_TRANSLATORS = {}


def translator(pool6):
    t = _TRANSLATORS.get(pool6)
    if t is None:
        t = pl.Translator(pool6=pool6, own4="192.0.2.2", own6="2001:db8::1")
        _TRANSLATORS[pool6] = t
    return t


def cname(reason):
    return COUNTER_NAMES[reason - 1] if 1 <= reason <= len(COUNTER_NAMES) else "?%d" % reason


def a4(s):
    return ipaddress.IPv4Address(s).packed


def a6(s):
    return ipaddress.IPv6Address(s).packed


def xlate(t, pkt, addr, port, partial=False):
    v, r, outs = t.translate(pkt, addr, port, partial_csum=partial)
    return int(v), int(r), [(int(k), bytes(b)) for k, b in outs]


# ------------------------------------------------------------- strategies
def _v4_ok(n):
    a = ipaddress.IPv4Address(n)
    return not (a.is_private or a.is_loopback or a.is_multicast or a.is_reserved
                or a.is_link_local or a.is_unspecified or (n >> 24) in (0, 100, 127))


_DOC4 = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]


@st.composite
def ipv4_addr(draw):
    if draw(st.booleans()):
        net = ipaddress.IPv4Network(draw(st.sampled_from(_DOC4)))
        return str(net.network_address + draw(st.integers(1, 254)))
    n = draw(st.integers(0x01000000, 0xDFFFFFFF).filter(_v4_ok))
    return str(ipaddress.IPv4Address(n))


@st.composite
def ipv6_client(draw, pool6):
    if draw(st.booleans()):
        base = int(ipaddress.IPv6Address("2001:db8:1::"))
        addr = ipaddress.IPv6Address(base | draw(st.integers(1, (1 << 80) - 1)))
    else:
        # any global unicast 2000::/4 outside pool6 and outside 2001:db8::/32's pool6s
        addr = ipaddress.IPv6Address((0x2 << 124) | draw(st.integers(1, (1 << 124) - 1)))
    assume(addr not in ipaddress.IPv6Network(pool6))
    assume(addr not in ipaddress.IPv6Network("2001:db8:6400::/40"))
    return str(addr)


def payload(size, seed):
    return random.Random(seed).randbytes(size)


TCP_OPTIONS = [b"", b"\x02\x04\x05\xb4", b"\x02\x04\x05\x8c\x01\x03\x03\x07",
               b"\x01\x01\x08\x0a\x00\x00\x10\x00\x00\x00\x20\x00"]
EXTS6 = [(), (P.hbh(),), (P.dstopts(),), (P.routing(0),), (P.hbh(), P.dstopts()),
         (P.hbh(), P.routing(0, addresses=("2001:db8::7", "2001:db8::8")), P.dstopts())]
OPTS4 = [b"", b"\x01\x01\x01\x00", bytes([7, 7, 4]) + bytes(4) + b"\x00",
         P.lsrr(("198.51.100.9",), pointer=8)]


@st.composite
def l4_params(draw):
    """Protocol-independent description of a transport segment."""
    kind = draw(st.sampled_from(["udp", "tcp", "echo_req", "echo_reply"]))
    return dict(
        kind=kind,
        sport=draw(st.integers(1, 65535)),
        dport=draw(st.integers(1, 65535)),
        ident=draw(st.integers(0, 65535)),
        seqn=draw(st.integers(0, 65535)),
        seq=draw(st.integers(0, 2**32 - 1)),
        ack=draw(st.integers(0, 2**32 - 1)),
        flags=draw(st.integers(0, 255)),
        window=draw(st.integers(0, 65535)),
        urg=draw(st.integers(0, 65535)),
        options=draw(st.sampled_from(TCP_OPTIONS)),
        payload=payload(draw(st.integers(0, 1400)), draw(st.integers(0, 2**32))),
        zero_csum=draw(st.booleans()) and draw(st.booleans()),
    )


def make_l4(p, family, sport=None, dport=None, ident=None, zero_ok=False):
    sport = p["sport"] if sport is None else sport
    dport = p["dport"] if dport is None else dport
    ident = p["ident"] if ident is None else ident
    if p["kind"] == "udp":
        return P.udp(sport, dport, p["payload"], zero_csum=zero_ok and p["zero_csum"])
    if p["kind"] == "tcp":
        return P.tcp(sport, dport, p["seq"], p["ack"], p["flags"], p["window"], p["payload"],
                     p["options"], urg=p["urg"])
    reply = p["kind"] == "echo_reply"
    echo = P.icmp6_echo if family == 6 else P.icmp4_echo
    return echo(ident, p["seqn"], p["payload"], reply=reply)


def swap(pkt):
    """Reply direction: swap source/destination addresses and TCP/UDP ports.
    No checksum changes (ones' complement sums commute)."""
    b = bytearray(pkt)
    p = P.parse(pkt)
    if p.version == 4:
        b[12:16], b[16:20] = pkt[16:20], pkt[12:16]
    else:
        b[8:24], b[24:40] = pkt[24:40], pkt[8:24]
    if p.proto in (P.TCP, P.UDP) and not p.frag_offset:
        o = p.l4_offset
        b[o:o + 2], b[o + 2:o + 4] = pkt[o + 2:o + 4], pkt[o:o + 2]
    return bytes(b)


def l4_without_csum(p):
    off = {P.TCP: 16, P.UDP: 6, P.ICMP: 2, P.ICMPV6: 2}[p.proto]
    return p.l4[:off] + p.l4[off + 2:]


def check_l4_mapped(orig, out, sport, dport, ident):
    """orig/out: parsed packets of different families; the transport part of out
    must equal orig's except ports/identifier (given) and checksum."""
    if orig.proto in (P.TCP, P.UDP):
        assert out.proto == orig.proto
        assert (out.sport, out.dport) == (sport, dport)
        assert l4_without_csum(out)[4:] == l4_without_csum(orig)[4:]
        assert out.payload == orig.payload
    else:
        types = {128: 8, 129: 0} if orig.proto == P.ICMPV6 else {8: 128, 0: 129}
        assert out.proto == (P.ICMP if orig.proto == P.ICMPV6 else P.ICMPV6)
        assert out.type == types[orig.type] and out.code == 0
        assert out.icmp_id == ident
        assert out.icmp_seq == orig.icmp_seq
        assert out.payload == orig.payload


# ------------------------------------------------------------------- 6->4
@st.composite
def case64(draw):
    pool6 = draw(st.sampled_from(POOL6S))
    return dict(
        pool6=pool6,
        client6=draw(ipv6_client(pool6)),
        peer4=draw(ipv4_addr()),
        src4=draw(ipv4_addr()),
        port4=draw(st.integers(1, 65535)),
        tc=draw(st.integers(0, 255)),
        flow=draw(st.integers(0, 0xFFFFF)),
        hlim=draw(st.integers(2, 255)),
        exts=draw(st.sampled_from(EXTS6)),
        l4=draw(l4_params()),
    )


def build64(c):
    dst6 = P.embed(c["pool6"], c["peer4"])
    return P.ipv6(c["client6"], dst6, make_l4(c["l4"], 6), hlim=c["hlim"], tc=c["tc"],
                  flow=c["flow"], exts=c["exts"])


@SETTINGS
@given(case64())
def test_6to4_valid_and_roundtrip(c):
    t = translator(c["pool6"])
    pkt = build64(c)
    orig = P.parse(pkt)
    is_icmp = orig.proto == P.ICMPV6
    v, r, outs = xlate(t, pkt, a4(c["src4"]), c["port4"])
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(outs) == 1 and outs[0][0] == K_IPV4
    out = P.parse(outs[0][1])
    assert P.valid(out), "invalid checksum in %s" % outs[0][1].hex()
    assert out.src == c["src4"] and out.dst == c["peer4"]
    assert out.ttl == c["hlim"] - 1
    assert out.tos == c["tc"]
    assert out.ihl == 20 and not out.mf and out.frag_offset == 0
    assert out.total_length == len(pkt) - 40 - sum(len(e.render(0)) for e in c["exts"]) + 20
    assert out.df == (out.total_length > 1260)
    if is_icmp:
        check_l4_mapped(orig, out, None, None, c["port4"])
    else:
        check_l4_mapped(orig, out, c["port4"], c["l4"]["dport"], None)

    # ---- back: the reply, translated 4->6 with the original client mapping
    sport = c["l4"]["ident"] if is_icmp else c["l4"]["sport"]
    v, r, back = xlate(t, swap(outs[0][1]), a6(c["client6"]), sport)
    if c["hlim"] - 1 <= 1:
        assert (v, cname(r)) == (DROP_ICMP, "JSTAT46_TTL")
        errs = [P.parse(b) for k, b in back if k == K_ICMP4_ERR]
        assert len(errs) == 1 and errs[0].type == 11 and P.valid(errs[0])
        return
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(back) == 1 and back[0][0] == K_IPV6
    res = P.parse(back[0][1])
    assert P.valid(res)
    assert not res.exts
    rt = P.parse(swap(back[0][1]))
    expected = P.parse(P.ipv6(c["client6"], P.embed(c["pool6"], c["peer4"]), make_l4(c["l4"], 6),
                              hlim=c["hlim"] - 2, tc=c["tc"], flow=0))
    assert rt.raw[:40] == expected.raw[:40], (rt.raw[:40].hex(), expected.raw[:40].hex())
    assert rt.proto == expected.proto
    assert l4_without_csum(rt) == l4_without_csum(expected)
    assert P.l4_csum_ok(rt)


@SETTINGS
@given(case64())
def test_6to4_partial_checksum(c):
    """A TCP/UDP frame whose checksum field holds only the pseudo-header sum
    (CHECKSUM_PARTIAL, flag bit 0) comes out with a complete checksum."""
    assume(c["l4"]["kind"] in ("udp", "tcp"))
    pkt = bytearray(build64(c))
    p = P.parse(bytes(pkt))
    off = p.l4_offset + (6 if p.proto == P.UDP else 16)
    struct.pack_into("!H", pkt, off,
                     P.ones_sum(P.pseudo6(p.src, p.dst, p.proto, len(p.l4))))
    v, r, outs = xlate(translator(c["pool6"]), bytes(pkt), a4(c["src4"]), c["port4"],
                       partial=True)
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(outs) == 1
    out = P.parse(outs[0][1])
    assert P.valid(out)
    assert out.proto != P.UDP or out.l4_csum != 0


# ------------------------------------------------------------------- 4->6
@st.composite
def case46(draw):
    pool6 = draw(st.sampled_from(POOL6S))
    return dict(
        pool6=pool6,
        client6=draw(ipv6_client(pool6)),
        peer4=draw(ipv4_addr()),
        pool4=draw(ipv4_addr()),
        port6=draw(st.integers(1, 65535)),
        tos=draw(st.integers(0, 255)),
        ttl=draw(st.integers(2, 255)),
        ident=draw(st.integers(0, 65535)),
        df=draw(st.booleans()),
        options=draw(st.sampled_from(OPTS4)),
        l4=draw(l4_params()),
    )


def build46(c):
    return P.ipv4(c["peer4"], c["pool4"], make_l4(c["l4"], 4, zero_ok=True), ttl=c["ttl"],
                  tos=c["tos"], ident=c["ident"], df=c["df"], options=c["options"])


def _one_ipv6(outs, c):
    """The IPv6 result as one packet: reassembled if the translator fragmented."""
    assert outs and all(k == K_IPV6 for k, _ in outs), [k for k, _ in outs]
    if len(outs) == 1:
        p = P.parse(outs[0][1])
        assert p.frag is None, "atomic fragment (RFC 8021 says no)"
        return p
    frags = [P.parse(b) for _, b in outs]
    for f in frags:
        assert len(f.raw) <= 1280, len(f.raw)
        assert f.frag is not None and f.frag["ident"] == c["ident"]
        assert f.hlim == c["ttl"] - 1
    return P.parse(P.reassemble6(frags))


@SETTINGS
@given(case46())
def test_4to6_valid_and_roundtrip(c):
    t = translator(c["pool6"])
    pkt = build46(c)
    orig = P.parse(pkt)
    is_icmp = orig.proto == P.ICMP
    v, r, outs = xlate(t, pkt, a6(c["client6"]), c["port6"])
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    v6_len = len(pkt) - orig.ihl + 40
    if c["df"] or v6_len <= 1280:
        assert len(outs) == 1, "unexpected fragmentation into %d" % len(outs)
    else:
        assert len(outs) >= 2, "DF=0 packet of %d bytes as IPv6 not fragmented" % v6_len
    out = _one_ipv6(outs, c)
    assert P.valid(out), "invalid checksum"
    peer6 = P.embed(c["pool6"], c["peer4"])
    assert out.src == peer6 and out.dst == c["client6"]
    assert out.hlim == c["ttl"] - 1
    assert out.tc == c["tos"] and out.flow == 0
    assert out.payload_length == len(pkt) - orig.ihl
    if is_icmp:
        check_l4_mapped(orig, out, None, None, c["port6"])
    else:
        if orig.proto == P.UDP and orig.l4_csum == 0:
            assert out.l4_csum != 0     # NAT64 always computes a real checksum
        check_l4_mapped(orig, out, c["l4"]["sport"], c["port6"], None)

    # ---- back: the reply, translated 6->4 with the original pool4 mapping
    dport = c["l4"]["ident"] if is_icmp else c["l4"]["dport"]
    v, r, back = xlate(t, swap(out.raw), a4(c["pool4"]), dport)
    if c["ttl"] - 1 <= 1:
        assert (v, cname(r)) == (DROP_ICMP, "JSTAT64_TTL")
        errs = [P.parse(b) for k, b in back if k == K_ICMP6_ERR]
        assert len(errs) == 1 and errs[0].type == 3 and P.valid(errs[0])
        return
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(back) == 1 and back[0][0] == K_IPV4
    res = P.parse(back[0][1])
    assert P.valid(res)
    rt = P.parse(swap(back[0][1]))
    expected = P.parse(P.ipv4(c["peer4"], c["pool4"], make_l4(c["l4"], 4), ttl=c["ttl"] - 2,
                              tos=c["tos"], ident=rt.ident, df=rt.df))
    assert rt.df == (rt.total_length > 1260)
    assert not rt.mf and rt.frag_offset == 0
    assert rt.raw[:10] == expected.raw[:10] and rt.raw[12:20] == expected.raw[12:20], \
        (rt.raw[:20].hex(), expected.raw[:20].hex())
    assert l4_without_csum(rt) == l4_without_csum(expected)
    assert P.l4_csum_ok(rt) and (rt.proto != P.UDP or rt.l4_csum != 0)


@SETTINGS
@given(case46())
def test_4to6_partial_checksum(c):
    assume(c["l4"]["kind"] in ("udp", "tcp"))
    c = dict(c, df=True)
    pkt = bytearray(build46(c))
    p = P.parse(bytes(pkt))
    off = p.l4_offset + (6 if p.proto == P.UDP else 16)
    struct.pack_into("!H", pkt, off,
                     P.ones_sum(P.pseudo4(p.src, p.dst, p.proto, len(p.l4))))
    v, r, outs = xlate(translator(c["pool6"]), bytes(pkt), a6(c["client6"]), c["port6"],
                       partial=True)
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(outs) == 1
    assert P.valid(P.parse(outs[0][1]))


# ------------------------------------------------------- wrong checksums
@SETTINGS
@given(case64(), st.integers(1, 0xFFFE))
def test_6to4_wrong_checksum_stays_wrong(c, delta):
    """RFC 1624 incremental update: a complete but wrong checksum stays wrong by
    the same amount (Jool's csumfail graybox vectors)."""
    assume(c["l4"]["kind"] in ("udp", "tcp"))
    good = P.parse(build64(c))
    pkt = bytearray(good.raw)
    off = good.l4_offset + (6 if good.proto == P.UDP else 16)
    bad = P.csum_add(good.l4_csum, delta)
    assume(not (good.proto == P.UDP and bad in (0, 0xFFFF)))
    assume(P.csum_diff(bad, good.l4_csum) != 0)
    struct.pack_into("!H", pkt, off, bad)
    err_in = P.csum_error(bytes(pkt))
    v, r, outs = xlate(translator(c["pool6"]), bytes(pkt), a4(c["src4"]), c["port4"])
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert P.csum_error(outs[0][1]) == err_in


# ------------------------------------------------------------ batch == single
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.one_of(case64(), case46()), min_size=1, max_size=40))
def test_batch_matches_translate(cases):
    """Batch/run() gives the same verdicts and (except the IPv4 Identification that
    the translator picks) the same bytes as translate()."""
    t = translator("64:ff9b::/96")
    items = []
    for c in cases:
        c = dict(c, pool6="64:ff9b::/96")
        if "src4" in c:
            items.append((build64(c), a4(c["src4"]), c["port4"]))
        else:
            items.append((build46(c), a6(c["client6"]), c["port6"]))
    b = pl.Batch(capacity=64, in_bytes=64 * 2048, out_bytes=64 * 4096)
    b.clear()
    for pkt, addr, port in items:
        b.add(pkt, addr, port)
    assert t.run(b) == len(items)
    bulk = {}
    for j in range(int(b.out_count)):
        bulk.setdefault(int(b.out_input[j]), []).append((int(b.out_kind[j]), bytes(b.output(j))))
    for i, (pkt, addr, port) in enumerate(items):
        v, r, outs = xlate(t, pkt, addr, port)
        assert (int(b.verdict[i]), int(b.reason[i])) == (v, r)
        got = bulk.get(i, [])
        assert [k for k, _ in got] == [k for k, _ in outs]
        for (k, x), (_, y) in zip(got, outs):
            if k == K_IPV4:      # Identification (and so the header checksum) may differ
                x, y = x[:4] + x[6:10] + x[12:], y[:4] + y[6:10] + y[12:]
            assert x == y


# ------------------------------------------------------------- ICMP errors
# RFC 7915 type/code mappings (§5.2 for 6->4, §4.2 for 4->6), the unambiguous rows.
ERR64 = {(1, 0): (3, 1), (1, 1): (3, 10), (1, 2): (3, 1), (1, 3): (3, 1), (1, 4): (3, 3),
         (2, 0): (3, 4), (3, 0): (11, 0), (3, 1): (11, 1), (4, 0): (12, 0), (4, 1): (3, 2)}
ERR46 = {(3, 0): (1, 0), (3, 1): (1, 0), (3, 2): (4, 1), (3, 3): (1, 4), (3, 4): (2, 0),
         (3, 5): (1, 0), (3, 6): (1, 0), (3, 7): (1, 0), (3, 8): (1, 0), (3, 9): (1, 1),
         (3, 10): (1, 1), (3, 11): (1, 0), (3, 12): (1, 0), (3, 13): (1, 1), (3, 15): (1, 1),
         (11, 0): (3, 0), (11, 1): (3, 1), (12, 0): (4, 0)}
PTR64 = {0: 0, 1: 1, 4: 2, 5: 2, 6: 9, 7: 8, **{i: 12 for i in range(8, 24)},
         **{i: 16 for i in range(24, 40)}}
PTR46 = {0: 0, 1: 1, 2: 4, 3: 4, 8: 7, 9: 6, **{i: 8 for i in range(12, 16)},
         **{i: 24 for i in range(16, 20)}}


@st.composite
def err64(draw):
    c = draw(case64())
    c["type_code"] = draw(st.sampled_from(sorted(ERR64)))
    c["pointer"] = draw(st.sampled_from(sorted(PTR64)))
    c["mtu"] = draw(st.integers(1280, 65535))
    c["from_router"] = draw(st.booleans())
    c["quote"] = draw(st.integers(48, 1232))
    return c


@SETTINGS
@given(err64())
def test_icmp6_error_to_icmp4(c):
    """An ICMPv6 error about a packet that went 4->6 (peer -> client) becomes an
    ICMPv4 error about the packet as the IPv4 peer sent it."""
    peer6 = P.embed(c["pool6"], c["peer4"])
    l4 = c["l4"]
    is_echo = l4["kind"].startswith("echo")
    inner = P.ipv6(peer6, c["client6"], make_l4(l4, 6),
                   hlim=c["hlim"], tc=c["tc"])
    quoted = inner[:c["quote"]]
    typ, code = c["type_code"]
    outer_src = "2001:db8:ffff::1" if c["from_router"] else c["client6"]
    err = P.ipv6(outer_src, peer6, P.icmp6_error(typ, code, quoted, mtu=c["mtu"],
                                                 pointer=c["pointer"]))
    v, r, outs = xlate(translator(c["pool6"]), err, a4(c["src4"]), c["port4"])
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(outs) == 1 and outs[0][0] == K_IPV4
    out = P.parse(outs[0][1])
    assert P.valid(out)
    assert out.proto == P.ICMP and (out.type, out.code) == ERR64[(typ, code)]
    assert out.dst == c["peer4"]
    if typ == 4 and code == 0:
        assert out.pointer == PTR64[c["pointer"]]
    if typ == 2:
        assert 68 <= out.mtu <= max(68, c["mtu"] - 20)
    assert len(out.raw) <= 576            # RFC 1812 §4.3.2.3 size of an ICMPv4 error
    i = out.inner
    assert i is not None and i.version == 4
    assert (i.src, i.dst) == (c["peer4"], c["src4"])
    assert P.ones_sum(i.raw[:20]) == 0xFFFF, "inner IPv4 header checksum"
    assert i.ttl == c["hlim"]              # the quoted packet's TTL is not decremented
    if is_echo:
        assert i.proto == P.ICMP and i.icmp_id == c["port4"]
    else:
        assert i.proto == (P.UDP if l4["kind"] == "udp" else P.TCP)
        assert (i.sport, i.dport) == (l4["sport"], c["port4"])


@st.composite
def err46(draw):
    c = draw(case46())
    c["type_code"] = draw(st.sampled_from(sorted(ERR46)))
    c["pointer"] = draw(st.sampled_from(sorted(PTR46)))
    c["mtu"] = draw(st.integers(68, 65535))
    c["router4"] = draw(ipv4_addr())
    c["quote"] = draw(st.integers(28, 548))
    return c


@SETTINGS
@given(err46())
def test_icmp4_error_to_icmp6(c):
    """An ICMPv4 error about a packet that went 6->4 (pool4 -> peer) becomes an
    ICMPv6 error about the packet as the IPv6 client sent it."""
    l4 = c["l4"]
    is_echo = l4["kind"].startswith("echo")
    inner = P.ipv4(c["pool4"], c["peer4"], make_l4(l4, 4), ttl=c["ttl"], tos=c["tos"],
                   df=True)
    quoted = inner[:c["quote"]]
    typ, code = c["type_code"]
    err = P.ipv4(c["router4"], c["pool4"], P.icmp4_error(typ, code, quoted, mtu=c["mtu"],
                                                         pointer=c["pointer"]),
                 ttl=max(c["ttl"], 2))
    v, r, outs = xlate(translator(c["pool6"]), err, a6(c["client6"]), c["port6"])
    assert (v, cname(r) if r else 0) == (TRANSLATED, 0)
    assert len(outs) == 1 and outs[0][0] == K_IPV6
    out = P.parse(outs[0][1])
    assert P.valid(out)
    assert len(out.raw) <= 1280
    assert out.proto == P.ICMPV6 and (out.type, out.code) == ERR46[(typ, code)]
    assert out.src == P.embed(c["pool6"], c["router4"])   # source-icmpv6-errors-better
    assert out.dst == c["client6"]
    if typ == 12:
        assert out.pointer == PTR46[c["pointer"]]
    if (typ, code) == (3, 2):
        assert out.pointer == 6
    if (typ, code) == (3, 4):
        assert out.mtu >= 1280
    i = out.inner
    assert i is not None and i.version == 6
    assert (i.src, i.dst) == (c["client6"], P.embed(c["pool6"], c["peer4"]))
    if is_echo:
        assert i.proto == P.ICMPV6 and i.icmp_id == c["port6"]
    else:
        assert i.proto == (P.UDP if l4["kind"] == "udp" else P.TCP)
        assert (i.sport, i.dport) == (c["port6"], l4["dport"])


def test_bounds_violations_zero():
    assert pl.bounds_violations() == 0
