"""Robustness of the translation core against truncated and lying packets.

Every prefix (lengths 0 .. len-1) of a set of valid packets is fed to
Translator.translate() and, in bulk, through Batch/Translator.run().  Whatever
the input, the core must not raise, must decide DROP or PASS with a named counter
that grew (or, if it translates, produce output that parses and is consistent),
and must never touch memory outside its buffers (bounds_violations() == 0 in a
JOOL_CHECKED build).  A second group hands it headers whose lengths lie, bad
header lengths, unknown extension headers and ICMP errors inside ICMP errors.

Run against the checked build:
    JOOL_CHECKED=1 python setup.py build_ext --inplace && pytest tests/unit/test_truncation.py
"""
import ipaddress
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pktlib as P  # noqa: E402

pl = pytest.importorskip("jool._fast.pipeline")
from jool._fast.stats import COUNTER_IDS, COUNTER_NAMES  # noqa: E402

TRANSLATED = int(pl.Verdict.TRANSLATED)
DROP = int(pl.Verdict.DROP)
DROP_ICMP = int(pl.Verdict.DROP_ICMP)
PASS = int(pl.Verdict.PASS)
VERDICT_NAMES = {TRANSLATED: "TRANSLATED", DROP: "DROP", DROP_ICMP: "DROP_ICMP", PASS: "PASS"}
K_IPV4, K_IPV6 = int(pl.OutKind.IPV4), int(pl.OutKind.IPV6)
K_ICMP4_ERR, K_ICMP6_ERR = int(pl.OutKind.ICMP4_ERROR), int(pl.OutKind.ICMP6_ERROR)

POOL6 = "64:ff9b::/96"
CLIENT6 = "2001:db8:1::10"
ROUTER6 = "2001:db8:1::1"
PEER4 = "198.51.100.20"
ROUTER4 = "203.0.113.1"
PEER6 = P.embed(POOL6, PEER4)
POOL4 = "192.0.2.10"
PORT6 = 40000      # client's port / ICMP id
PORT4 = 61001      # pool4 port / ICMP id
SRV = 443

MAP6TO4 = (ipaddress.IPv4Address(POOL4).packed, PORT4)
MAP4TO6 = (ipaddress.IPv6Address(CLIENT6).packed, PORT6)


def new_translator():
    return pl.Translator(pool6=POOL6, own4="192.0.2.2", own6="2001:db8::1")


def cid(name):
    return COUNTER_IDS[name]


def cname(reason):
    if 1 <= reason <= len(COUNTER_NAMES):
        return COUNTER_NAMES[reason - 1]
    return "?%d" % reason


def mapping_for(pkt):
    """6->4 packets get the pool4 mapping, 4->6 packets the client mapping."""
    if pkt and pkt[0] >> 4 == 6:
        return MAP6TO4
    return MAP4TO6


# ------------------------------------------------------------------ packets
PAY = bytes(range(32, 32 + 40))
TCP_OPTS = b"\x02\x04\x05\xb4\x01\x03\x03\x07"          # MSS 1460, NOP, WS 7


def _l4_of(pkt):
    return P.parse(pkt).l4


def _frags6(l4obj, ident, cut):
    """First and last IPv6 fragments of CLIENT6 -> PEER6 carrying l4obj."""
    whole = P.ipv6(CLIENT6, PEER6, l4obj)
    l4 = _l4_of(whole)
    first = P.ipv6(CLIENT6, PEER6, P.raw(l4obj.proto, l4[:cut]),
                   exts=(P.frag(ident, 0, mf=True),))
    last = P.ipv6(CLIENT6, PEER6, P.raw(l4obj.proto, l4[cut:]),
                  exts=(P.frag(ident, cut, mf=False),))
    return first, last


def _frags4(l4obj, ident, cut):
    whole = P.ipv4(PEER4, POOL4, l4obj)
    l4 = _l4_of(whole)
    first = P.ipv4(PEER4, POOL4, P.raw(l4obj.proto, l4[:cut]), ident=ident, mf=True)
    last = P.ipv4(PEER4, POOL4, P.raw(l4obj.proto, l4[cut:]), ident=ident, offset=cut)
    return first, last


def packets_6to4():
    """(name, bytes) of valid IPv6 packets from the client side."""
    out = []
    add = lambda n, p: out.append(("v6_" + n, p))  # noqa: E731
    add("udp", P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY)))
    add("udp_empty", P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, b"")))
    add("tcp_syn_opts", P.ipv6(CLIENT6, PEER6, P.tcp(PORT6, SRV, 1000, 0, P.SYN,
                                                     options=TCP_OPTS), tc=0xb8))
    add("tcp_data", P.ipv6(CLIENT6, PEER6, P.tcp(PORT6, SRV, 5, 6, P.ACK | P.PSH,
                                                 payload=PAY)))
    add("echo_req", P.ipv6(CLIENT6, PEER6, P.icmp6_echo(PORT6, 7, PAY)))
    add("echo_reply", P.ipv6(CLIENT6, PEER6, P.icmp6_echo(PORT6, 8, b"", reply=True)))
    add("hbh_dst_udp", P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY[:10]),
                              exts=(P.hbh(), P.dstopts(b"\x01\x04\0\0\0\0"))))
    add("routing0_tcp", P.ipv6(CLIENT6, PEER6, P.tcp(PORT6, SRV, 1, 2, P.ACK),
                               exts=(P.routing(0),)))
    add("hbh_echo", P.ipv6(CLIENT6, PEER6, P.icmp6_echo(PORT6, 1, PAY[:8]),
                           exts=(P.hbh(b"\x05\x02\0\0"),)))  # router alert
    f1, f2 = _frags6(P.udp(PORT6, SRV, PAY * 2), 0x12345678, 48)
    add("frag_first_udp", f1)
    add("frag_last_udp", f2)
    f1, _ = _frags6(P.tcp(PORT6, SRV, 1, 2, P.ACK, payload=PAY), 0x42, 32)
    add("frag_first_tcp", f1)
    add("hbh_frag_first_udp", P.ipv6(CLIENT6, PEER6, P.raw(P.UDP, _l4_of(f1)[:40]),
                                     exts=(P.hbh(), P.frag(9, 0, mf=True))))
    # ICMPv6 errors about packets that went IPv4 -> IPv6 (peer -> client).
    in_udp = P.ipv6(PEER6, CLIENT6, P.udp(SRV, PORT6, PAY), hlim=60)
    in_tcp = P.ipv6(PEER6, CLIENT6, P.tcp(SRV, PORT6, 9, 10, P.SYN | P.ACK,
                                          options=TCP_OPTS))
    in_echo = P.ipv6(PEER6, CLIENT6, P.icmp6_echo(PORT6, 3, PAY[:16], reply=True))
    in_big = P.ipv6(PEER6, CLIENT6, P.udp(SRV, PORT6, bytes(300)))
    add("err_port_unreach_udp", P.ipv6(CLIENT6, PEER6, P.icmp6_error(1, 4, in_udp)))
    add("err_ptb_tcp", P.ipv6(ROUTER6, PEER6, P.icmp6_error(2, 0, in_tcp, mtu=1400)))
    add("err_time_exceeded_echo", P.ipv6(ROUTER6, PEER6, P.icmp6_error(3, 0, in_echo)))
    add("err_param_prob_udp", P.ipv6(CLIENT6, PEER6, P.icmp6_error(4, 0, in_udp, pointer=7)))
    add("err_truncated_inner", P.ipv6(ROUTER6, PEER6, P.icmp6_error(1, 0, in_big[:120])))
    add("err_inner_with_ext", P.ipv6(
        CLIENT6, PEER6, P.icmp6_error(1, 4, P.ipv6(PEER6, CLIENT6, P.udp(SRV, PORT6, PAY),
                                                   exts=(P.dstopts(),)))))
    add("err_rfc4884_ext", P.ipv6(ROUTER6, PEER6,
                                  P.icmp6_error(3, 0, in_udp, ext=P.ext_structure())))
    return out


def packets_4to6():
    """(name, bytes) of valid IPv4 packets from the IPv4 peer side."""
    out = []
    add = lambda n, p: out.append(("v4_" + n, p))  # noqa: E731
    add("udp_df", P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY), df=True, ident=1))
    add("udp_nodf", P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY[:3]), ident=2, tos=0x10))
    add("udp_zero_csum", P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY, zero_csum=True)))
    add("tcp_synack_opts", P.ipv4(PEER4, POOL4, P.tcp(SRV, PORT4, 77, 1001, P.SYN | P.ACK,
                                                      options=TCP_OPTS), df=True))
    add("tcp_data", P.ipv4(PEER4, POOL4, P.tcp(SRV, PORT4, 5, 6, P.ACK, payload=PAY)))
    add("echo_req", P.ipv4(PEER4, POOL4, P.icmp4_echo(PORT4, 1, PAY)))
    add("echo_reply", P.ipv4(PEER4, POOL4, P.icmp4_echo(PORT4, 2, b"", reply=True)))
    rr = bytes([7, 7, 4]) + bytes(4) + b"\x00"       # record route + EOL
    add("opt_rr_udp", P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY[:12]), options=rr))
    add("opt_expired_lsrr_tcp", P.ipv4(PEER4, POOL4, P.tcp(SRV, PORT4, 1, 2, P.ACK),
                                       options=P.lsrr(pointer=8)))
    add("opt_nops_echo", P.ipv4(PEER4, POOL4, P.icmp4_echo(PORT4, 3, PAY[:4]),
                                options=b"\x01\x01\x01\x00"))
    f1, f2 = _frags4(P.udp(SRV, PORT4, PAY * 2), 0x4321, 40)
    add("frag_first_udp", f1)
    add("frag_last_udp", f2)
    f1, _ = _frags4(P.tcp(SRV, PORT4, 1, 2, P.ACK, payload=PAY), 0x99, 32)
    add("frag_first_tcp", f1)
    # ICMPv4 errors about packets that went IPv6 -> IPv4 (pool4 -> peer).
    in_udp = P.ipv4(POOL4, PEER4, P.udp(PORT4, SRV, PAY), ttl=3, df=True)
    in_tcp = P.ipv4(POOL4, PEER4, P.tcp(PORT4, SRV, 1, 0, P.SYN, options=TCP_OPTS))
    in_echo = P.ipv4(POOL4, PEER4, P.icmp4_echo(PORT4, 4, PAY[:16]))
    in_opts = P.ipv4(POOL4, PEER4, P.udp(PORT4, SRV, PAY[:8]), options=rr)
    in_big = P.ipv4(POOL4, PEER4, P.udp(PORT4, SRV, bytes(400)))
    add("err_port_unreach_udp", P.ipv4(PEER4, POOL4, P.icmp4_error(3, 3, in_udp)))
    add("err_frag_needed_tcp", P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 4, in_tcp, mtu=1400)))
    add("err_frag_needed_mtu0", P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 4, in_tcp, mtu=0)))
    add("err_time_exceeded_echo", P.ipv4(ROUTER4, POOL4, P.icmp4_error(11, 0, in_echo)))
    add("err_param_prob_udp", P.ipv4(ROUTER4, POOL4, P.icmp4_error(12, 0, in_udp, pointer=8)))
    add("err_rfc792_28bytes", P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 1, in_big[:28])))
    add("err_inner_options", P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 1, in_opts)))
    add("err_rfc4884_ext", P.ipv4(ROUTER4, POOL4,
                                  P.icmp4_error(11, 0, in_udp, ext=P.ext_structure())))
    # Big: DF=0 is fragmented to 1280-byte IPv6 packets; DF=1 gets Frag Needed back.
    add("big_udp_nodf", P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, bytes(range(256)) * 5 + PAY),
                               ident=0x7777))
    add("big_tcp_df_too_big", P.ipv4(PEER4, POOL4, P.tcp(SRV, PORT4, 1, 2, P.ACK,
                                                          payload=bytes(1460)), df=True))
    return out


ALL_PACKETS = packets_6to4() + packets_4to6()
# Fragments: the core may legitimately refuse them (Jool sees reassembled packets
# only); every other packet must translate whole.
MAY_REFUSE_WHOLE = {n for n, _ in ALL_PACKETS if "frag" in n}
WHOLE_EXPECTED = {"v4_big_tcp_df_too_big": (DROP_ICMP, "JSTAT_PKT_TOO_BIG")}


# ------------------------------------------------------------------ checking
def outs_of(outputs):
    return [(int(k), bytes(b)) for k, b in outputs]


def check_consistent(data):
    """The output parses (lengths consistent), the IPv4 header checksum holds and
    the L4 header is complete. Returns the parsed packet."""
    p = P.parse(data)                # asserts IP length field == buffer size
    assert P.ip_csum_ok(p), "bad IPv4 header checksum"
    if p.version == 4:
        assert p.ihl >= 20
    if not p.is_fragment:
        if p.proto == P.UDP:
            assert len(p.l4) >= 8
            ulen = struct.unpack_from("!H", p.l4, 4)[0]
            assert 8 <= ulen <= len(p.l4), "UDP length %d vs %d" % (ulen, len(p.l4))
        elif p.proto == P.TCP:
            assert len(p.l4) >= 20
            doff = (p.l4[12] >> 4) * 4
            assert 20 <= doff <= len(p.l4), "TCP data offset %d vs %d" % (doff, len(p.l4))
        elif p.proto in (P.ICMP, P.ICMPV6):
            assert len(p.l4) >= 8
    return p


def check_icmp_error_out(data, in_pkt):
    """A translator-generated ICMP error: parses, valid checksums, goes back to the
    source of the input packet."""
    p = check_consistent(data)
    assert P.valid(p), "generated ICMP error has a bad checksum"
    assert p.proto in (P.ICMP, P.ICMPV6)
    assert p.type in (P.ICMP4_ERRORS if p.proto == P.ICMP else P.ICMP6_ERRORS)
    src = P.parse(in_pkt[:40] if in_pkt[0] >> 4 == 6 else in_pkt, inner=True).src
    assert p.dst == src


def check_result(name, pkt, verdict, reason, outputs, before, after, whole=False):
    """The common contract. `whole`: pkt is a complete valid packet."""
    what = "%s (len %d)" % (name, len(pkt))
    assert verdict in VERDICT_NAMES, "%s: unknown verdict %r" % (what, verdict)
    outputs = outs_of(outputs)
    if verdict in (DROP, PASS, DROP_ICMP):
        assert reason != 0, "%s: %s with reason 0" % (what, VERDICT_NAMES[verdict])
        assert 1 <= reason < len(after), "%s: reason %d out of range" % (what, reason)
        assert after[reason] > before[reason], \
            "%s: %s reason %s but its counter did not grow" % (
                what, VERDICT_NAMES[verdict], cname(reason))
    if verdict == DROP:
        assert outputs == [], "%s: DROP with outputs %r" % (what, outputs)
    elif verdict == PASS:
        assert not [k for k, _ in outputs if k in (K_ICMP4_ERR, K_ICMP6_ERR)], \
            "%s: PASS must never emit ICMP" % what
    elif verdict == DROP_ICMP:
        errs = [b for k, b in outputs if k in (K_ICMP4_ERR, K_ICMP6_ERR)]
        assert errs, "%s: DROP_ICMP without an ICMP error output" % what
        for b in errs:
            check_icmp_error_out(b, pkt)
    else:
        assert reason == 0, "%s: TRANSLATED with reason %s" % (what, cname(reason))
        assert outputs, "%s: TRANSLATED without output" % what
        fam_out = K_IPV4 if pkt[0] >> 4 == 6 else K_IPV6
        for k, b in outputs:
            assert k == fam_out, "%s: output kind %#x" % (what, k)
            try:
                p = check_consistent(b)
            except (AssertionError, ValueError, struct.error, IndexError) as e:
                raise AssertionError("%s: TRANSLATED into a corrupt packet: %s; out=%s"
                                     % (what, e, b.hex())) from e
            if whole and len(outputs) == 1:
                assert P.valid(p), "%s: translated packet has a bad checksum" % what


@pytest.fixture
def xlat():
    t = new_translator()
    v0 = pl.bounds_violations()
    yield t
    assert pl.bounds_violations() == v0, "bounds violations during the test"


def run_one(t, name, pkt, whole=False):
    addr, port = mapping_for(pkt)
    before = np.array(t.counters, dtype=np.uint64).copy()
    verdict, reason, outputs = t.translate(pkt, addr, port)
    after = np.array(t.counters, dtype=np.uint64).copy()
    verdict, reason = int(verdict), int(reason)
    check_result(name, pkt, verdict, reason, outputs, before, after, whole)
    return verdict, reason, outs_of(outputs)


def run_batch(t, items, cap=256):
    """items: list of (name, pkt). Runs them through Batches of `cap`; returns
    [(verdict, reason, n_outputs)] in order."""
    res = []
    b = pl.Batch(capacity=cap, in_bytes=cap * 2048, out_bytes=cap * 4096)
    for start in range(0, len(items), cap):
        chunk = items[start:start + cap]
        b.clear()
        for _, pkt in chunk:
            addr, port = mapping_for(pkt)
            b.add(pkt, addr, port)
        done = t.run(b)
        assert done == len(chunk)
        nout = [0] * len(chunk)
        for j in range(int(b.out_count)):
            i = int(b.out_input[j])
            assert 0 <= i < len(chunk)
            nout[i] += 1
            out = bytes(b.output(j))
            assert len(out) == int(b.out_length[j])
        for i in range(len(chunk)):
            res.append((int(b.verdict[i]), int(b.reason[i]), nout[i]))
    return res


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("name,pkt", ALL_PACKETS, ids=[n for n, _ in ALL_PACKETS])
def test_whole_packet_translates(xlat, name, pkt):
    """Sanity of the corpus: each complete packet is handled (translated unless it
    is a fragment the core may refuse)."""
    verdict, reason, outputs = run_one(xlat, name, pkt, whole=True)
    if name in WHOLE_EXPECTED:
        assert (verdict, cname(reason)) == WHOLE_EXPECTED[name]
        return
    if name not in MAY_REFUSE_WHOLE:
        assert verdict == TRANSLATED, "%s: %s %s" % (name, VERDICT_NAMES[verdict],
                                                       cname(reason))
    if verdict != TRANSLATED:
        return
    outs = [P.parse(b) for _, b in outputs]
    if len(outs) > 1:               # 4->6 fragmentation
        for o in outs:
            assert len(o.raw) <= 1280 and o.frag is not None
        outs = [P.parse(P.reassemble6(outs))]
        assert P.valid(outs[0])
    o, i = outs[0], P.parse(pkt)
    if i.version == 6:
        assert (o.src, o.dst) == (POOL4, PEER4)
        assert o.ttl == i.hlim - 1
    else:
        src6 = P.embed(POOL6, i.src)
        assert (o.src, o.dst) == (src6, CLIENT6)
        assert o.hlim == i.ttl - 1
    if i.frag_offset:
        return
    if i.proto in (P.TCP, P.UDP):
        if i.version == 6:
            assert (o.sport, o.dport) == (PORT4, i.dport)
        else:
            assert (o.sport, o.dport) == (i.sport, PORT6)
    elif i.icmp_id is not None:
        assert o.icmp_id == (PORT4 if i.version == 6 else PORT6)
    elif i.inner is not None:       # ICMP error: the quoted packet is mapped too
        assert o.inner is not None, "quoted packet lost"
        if i.version == 6:
            assert (o.inner.src, o.inner.dst) == (PEER4, POOL4)
            assert P.ones_sum(o.inner.raw[:o.inner.ihl]) == 0xFFFF, "inner IPv4 checksum"
            port = o.inner.dport if o.inner.proto != P.ICMP else o.inner.icmp_id
            assert port == PORT4
        else:
            assert (o.inner.src, o.inner.dst) == (CLIENT6, P.embed(POOL6, i.inner.dst))
            port = o.inner.sport if o.inner.proto != P.ICMPV6 else o.inner.icmp_id
            assert port == PORT6


@pytest.mark.parametrize("name,pkt", ALL_PACKETS, ids=[n for n, _ in ALL_PACKETS])
def test_every_prefix(xlat, name, pkt):
    results = []
    for n in range(len(pkt)):
        v, r, outs = run_one(xlat, name + "[:%d]" % n, pkt[:n])
        results.append((v, r, len(outs)))
        # The outer header claims the full length: a prefix is a truncated packet.
        # Translating it is allowed only if the output is consistent (checked
        # above); generating an ICMP error about it is not.
        assert v != DROP_ICMP, "%s[:%d]: ICMP error generated for a truncated packet (%s)" % (
            name, n, cname(r))
    # The same prefixes through one Batch: same verdicts and reasons.
    batch = run_batch(xlat, [(name, pkt[:n]) for n in range(len(pkt))])
    for n, (single, bulk) in enumerate(zip(results, batch)):
        assert single == bulk, "%s[:%d]: translate() %r vs run() %r" % (name, n, single, bulk)


def test_all_prefixes_one_batch(xlat):
    """All prefixes of all packets mixed in shared batches; counters of drops grow."""
    items = [(n, p[:k]) for n, p in ALL_PACKETS for k in range(len(p))]
    before = np.array(xlat.counters, dtype=np.uint64).copy()
    res = run_batch(xlat, items)
    after = np.array(xlat.counters, dtype=np.uint64).copy()
    grown = {}
    for (name, pkt), (v, r, nout) in zip(items, res):
        assert v in (DROP, PASS, TRANSLATED), "%s[:%d]: verdict %r" % (name, len(pkt), v)
        if v != TRANSLATED:
            assert r != 0, "%s[:%d]: no reason" % (name, len(pkt))
            grown[r] = grown.get(r, 0) + 1
        if v == DROP:
            assert nout == 0
    for r, n in grown.items():
        assert after[r] - before[r] >= n, "counter %s grew %d, expected >= %d" % (
            cname(r), after[r] - before[r], n)


# ------------------------------------------------------------ lying lengths
def _set16(pkt, off, val):
    b = bytearray(pkt)
    struct.pack_into("!H", b, off, val)
    return bytes(b)


def _set8(pkt, off, val):
    b = bytearray(pkt)
    b[off] = val
    return bytes(b)


def _fix4(pkt):
    """Recompute the IPv4 header checksum (so that only the lie is wrong)."""
    b = bytearray(pkt)
    ihl = min((b[0] & 0xF) * 4, len(b))
    struct.pack_into("!H", b, 10, 0)
    struct.pack_into("!H", b, 10, P.checksum(bytes(b[:max(ihl, 20)])))
    return bytes(b)


U4 = P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY), df=True)
T4 = P.ipv4(PEER4, POOL4, P.tcp(SRV, PORT4, 1, 2, P.ACK, payload=PAY), df=True)
U6 = P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY))
T6 = P.ipv6(CLIENT6, PEER6, P.tcp(PORT6, SRV, 1, 2, P.ACK, payload=PAY))
E6_INNER_UDP = P.ipv6(PEER6, CLIENT6, P.udp(SRV, PORT6, PAY))
E4_INNER_UDP = P.ipv4(POOL4, PEER4, P.udp(PORT4, SRV, PAY))

# name -> (packet, set of acceptable reason names or None for "any named counter",
#          set of acceptable verdicts)
ANY = None
DP = {DROP, PASS}
DPT = {DROP, PASS, TRANSLATED}
DPI = {DROP, PASS, DROP_ICMP}
ALLV = {DROP, PASS, DROP_ICMP, TRANSLATED}


def lying_cases():
    c = {}
    # ---- IPv4 total length / IHL
    c["v4_totlen_longer"] = (_fix4(_set16(U4, 2, len(U4) + 1)), ANY, DP)
    c["v4_totlen_much_longer"] = (_fix4(_set16(U4, 2, 0xFFFF)), ANY, DP)
    c["v4_totlen_shorter_cuts_udp"] = (_fix4(_set16(U4, 2, len(U4) - 5)), ANY, DPT)
    c["v4_totlen_below_ihl"] = (_fix4(_set16(U4, 2, 19)), ANY, DP)
    c["v4_totlen_zero"] = (_fix4(_set16(U4, 2, 0)), ANY, DP)
    c["v4_trailing_padding"] = (U4 + bytes(6), ANY, DPT)
    c["v4_ihl_4"] = (_fix4(_set8(U4, 0, 0x44)), ANY, DP)
    c["v4_ihl_0"] = (_fix4(_set8(U4, 0, 0x40)), ANY, DP)
    c["v4_ihl_15_short"] = (_fix4(_set8(U4, 0, 0x4F)), ANY, DP)   # 60-byte header, garbage
    c["v4_ihl_beyond_packet"] = (_fix4(_set8(U4[:36], 0, 0x4F)), ANY, DP)
    c["v4_bad_hdr_csum"] = (_set16(U4, 10, 0x1234), ANY, DPT)
    c["v4_version_5"] = (_set8(U4, 0, 0x55), ANY, DP)
    c["v4_bad_option_len"] = (P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY),
                                     options=b"\x07\x28\x04\x00"), ANY, ALLV)  # RR len 40
    c["v4_option_len_0"] = (P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY),
                                   options=b"\x44\x00\x01\x01"), ANY, ALLV)
    c["v4_unexpired_lsrr"] = (P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY),
                                     options=P.lsrr(pointer=4)),
                                 {"JSTAT46_SRC_ROUTE"}, {DROP_ICMP})
    # ---- UDP length
    c["v4_udplen_longer"] = (_set16(U4, 24, len(U4) - 20 + 4), ANY, DPT)
    c["v4_udplen_shorter"] = (_set16(U4, 24, 10), ANY, DPT)
    c["v4_udplen_below_8"] = (_set16(U4, 24, 4), ANY, DPT)
    c["v6_udplen_longer"] = (_set16(U6, 44, len(U6) - 40 + 4), ANY, DPT)
    c["v6_udplen_zero"] = (_set16(U6, 44, 0), ANY, DPT)
    c["v6_udplen_below_8"] = (_set16(U6, 44, 7), ANY, DPT)
    # ---- TCP data offset
    c["v4_tcp_doff_4"] = (_set8(T4, 32, 0x40), ANY, DPT)
    c["v4_tcp_doff_0"] = (_set8(T4, 32, 0x00), ANY, DPT)
    c["v4_tcp_doff_15_short"] = (_set8(P.ipv4(PEER4, POOL4, P.tcp(SRV, PORT4, flags=P.ACK)),
                                       32, 0xF0), ANY, DP)
    c["v6_tcp_doff_4"] = (_set8(T6, 52, 0x40), ANY, DPT)
    c["v6_tcp_doff_15_short"] = (_set8(P.ipv6(CLIENT6, PEER6, P.tcp(PORT6, SRV, flags=P.ACK)),
                                       52, 0xF0), ANY, DP)
    # ---- IPv6 payload length
    c["v6_plen_longer"] = (_set16(U6, 4, len(U6) - 40 + 1), ANY, DP)
    c["v6_plen_much_longer"] = (_set16(U6, 4, 0xFFFF), ANY, DP)
    c["v6_plen_shorter_cuts_udp"] = (_set16(U6, 4, len(U6) - 40 - 3), ANY, DPT)
    c["v6_plen_zero"] = (_set16(U6, 4, 0), ANY, DPT)
    c["v6_trailing_padding"] = (U6 + bytes(7), ANY, DPT)
    c["v6_version_4_nibble_in_v6"] = (_set8(U6, 0, 0x46), ANY, DP)
    c["v6_version_7"] = (_set8(U6, 0, 0x70), ANY, DP)
    # ---- IPv6 extension headers
    hb = P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY), exts=(P.hbh(),))
    c["v6_hbh_len_beyond"] = (_set8(hb, 41, 200), ANY, DP)
    c["v6_hbh_len_into_udp"] = (_set8(hb, 41, 1), ANY, DPT)
    c["v6_unknown_nh_253"] = (P.ipv6(CLIENT6, PEER6, P.raw(253, PAY)),
                              {"JSTAT_UNKNOWN_L4_PROTO"}, {PASS})
    c["v6_dst_then_unknown"] = (P.ipv6(CLIENT6, PEER6, P.raw(253, PAY), exts=(P.dstopts(),)),
                                {"JSTAT_UNKNOWN_L4_PROTO"}, {PASS})
    c["v6_no_next_header"] = (P.ipv6(CLIENT6, PEER6, P.raw(P.NONXT, b"")), ANY, DP)
    c["v6_unknown_ext_esp"] = (P.ipv6(CLIENT6, PEER6, P.raw(50, PAY)), ANY, DP)
    c["v6_two_frag_headers"] = (P.ipv6(CLIENT6, PEER6, P.raw(P.UDP, PAY),
                                       exts=(P.frag(1, 0, True), P.frag(1, 0, True))),
                                {"JSTAT64_2XFRAG"}, {DROP})
    c["v6_frag_then_hbh"] = (P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY),
                                    exts=(P.frag(1, 0, False), P.dstopts())),
                             {"JSTAT64_FRAG_THEN_EXT"}, {DROP_ICMP})
    c["v6_routing_segleft_1"] = (P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY),
                                        exts=(P.routing(1),)),
                                 {"JSTAT64_SEGMENTS_LEFT"}, {DROP_ICMP})
    c["v6_many_ext_headers"] = (P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY),
                                       exts=(P.hbh(),) + (P.dstopts(),) * 30), ANY, DPT)
    c["v6_hlim_1"] = (P.ipv6(CLIENT6, PEER6, P.udp(PORT6, SRV, PAY), hlim=1),
                      {"JSTAT64_TTL"}, {DROP_ICMP})
    c["v4_ttl_1"] = (P.ipv4(PEER4, POOL4, P.udp(SRV, PORT4, PAY), ttl=1),
                     {"JSTAT46_TTL"}, {DROP_ICMP})
    # ---- ICMP errors inside ICMP errors
    e6 = P.ipv6(PEER6, CLIENT6, P.icmp6_error(1, 4, E6_INNER_UDP))
    c["v6_icmp_err_in_err"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(1, 4, e6)),
                               {"JSTAT_DOUBLE_ICMP6_ERROR"}, {DROP})
    c["v6_icmp_err_in_ptb"] = (P.ipv6(ROUTER6, PEER6, P.icmp6_error(2, 0, e6, mtu=1300)),
                               {"JSTAT_DOUBLE_ICMP6_ERROR"}, {DROP})
    e4 = P.ipv4(POOL4, PEER4, P.icmp4_error(3, 3, E4_INNER_UDP))
    c["v4_icmp_err_in_err"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(11, 0, e4)),
                               {"JSTAT_DOUBLE_ICMP4_ERROR"}, {DROP})
    c["v4_icmp_err_in_err_28"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 1, e4[:28])),
                                  {"JSTAT_DOUBLE_ICMP4_ERROR"}, {DROP})
    # ---- lies inside ICMP errors
    c["v6_err_inner_too_short"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(1, 4, E6_INNER_UDP[:30])),
                                   ANY, DP)
    c["v6_err_inner_no_l4"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(1, 4, E6_INNER_UDP[:44])),
                               ANY, DPT)
    c["v6_err_inner_plen_short"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(
        1, 4, _set16(E6_INNER_UDP, 4, 2))), ANY, DPT)
    c["v6_err_inner_version_4"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(
        1, 4, _set8(E6_INNER_UDP, 0, 0x45))), ANY, DPT)
    c["v6_err_inner_unknown_proto"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(
        1, 4, P.ipv6(PEER6, CLIENT6, P.raw(253, PAY)))), {"JSTAT_UNKNOWN_PROTO_INNER"}, DP)
    c["v6_err_inner_hbh_len_beyond"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(
        1, 4, _set8(P.ipv6(PEER6, CLIENT6, P.udp(SRV, PORT6, PAY), exts=(P.hbh(),)), 41, 99))),
        ANY, DPT)
    c["v6_err_4884_len_beyond"] = (P.ipv6(ROUTER6, PEER6, P.icmp6_error(
        3, 0, E6_INNER_UDP, ext=P.ext_structure(), length=200)), ANY, DPT)
    c["v6_err_bad_csum"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(1, 4, E6_INNER_UDP,
                                                                 csum_delta=5)),
                            {"JSTAT64_ICMP_CSUM"}, {DROP})
    c["v4_err_inner_ihl_4"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        3, 3, _set8(E4_INNER_UDP, 0, 0x44))), ANY, DPT)
    c["v4_err_inner_ihl_15"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        3, 3, _set8(E4_INNER_UDP, 0, 0x4F))), ANY, DPT)
    c["v4_err_inner_too_short"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 3, E4_INNER_UDP[:16])),
                                   ANY, DP)
    c["v4_err_inner_no_ports"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 3, E4_INNER_UDP[:22])),
                                  ANY, DPT)
    c["v4_err_inner_totlen_short"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        3, 3, _set16(E4_INNER_UDP, 2, 10))), ANY, DPT)
    c["v4_err_inner_totlen_long"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        3, 3, _set16(E4_INNER_UDP, 2, 60000))), ANY, DPT)
    c["v4_err_inner_unknown_proto"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        3, 3, P.ipv4(POOL4, PEER4, P.raw(253, PAY)))), {"JSTAT_UNKNOWN_PROTO_INNER"}, DP)
    c["v4_err_4884_len_beyond"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        11, 0, E4_INNER_UDP, ext=P.ext_structure(), length=250)), ANY, DPT)
    c["v4_err_bad_csum"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 3, E4_INNER_UDP,
                                                                 csum_delta=9)),
                            {"JSTAT46_ICMP_CSUM"}, {DROP})
    c["v4_err_in_fragment"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 3, E4_INNER_UDP), mf=True),
                               ANY, DP)
    c["v4_err_inner_nonfirst_frag"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        3, 3, P.ipv4(POOL4, PEER4, P.raw(P.UDP, PAY), offset=64))), ANY, DP)
    c["v4_param_prob_bad_ptr"] = (P.ipv4(ROUTER4, POOL4, P.icmp4_error(
        12, 0, E4_INNER_UDP, pointer=5)),
        {"JSTAT46_UNTRANSLATABLE_PARAM_PROBLEM_PTR"}, {DROP})
    c["v6_param_prob_bad_ptr"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_error(
        4, 0, E6_INNER_UDP, pointer=2)), ANY, DPT)
    c["v4_unknown_icmp_type"] = (P.ipv4(PEER4, POOL4, P.icmp4(42, 0)), ANY, DP)
    c["v6_unknown_icmp_type"] = (P.ipv6(CLIENT6, PEER6, P.icmp6(200, 0)), ANY, DP)
    c["v4_empty_ip_payload_udp"] = (P.ipv4(PEER4, POOL4, P.raw(P.UDP, b"")), ANY, DP)
    c["v6_empty_ip_payload_tcp"] = (P.ipv6(CLIENT6, PEER6, P.raw(P.TCP, b"")), ANY, DP)
    c["v6_empty_ip_payload_icmp"] = (P.ipv6(CLIENT6, PEER6, P.raw(P.ICMPV6, b"")), ANY, DP)
    c["v4_fragment_of_icmp"] = (P.ipv4(PEER4, POOL4, P.icmp4_echo(PORT4, 1, PAY), mf=True),
                                ANY, DPT)
    c["v6_fragment_of_icmp"] = (P.ipv6(CLIENT6, PEER6, P.icmp6_echo(PORT6, 1, PAY),
                                       exts=(P.frag(5, 0, True),)), ANY, DPT)
    # ---- lengths that agree, but the transport header is cut short
    l4s = {"udp": (8, P.udp(SRV, PORT4, PAY), P.udp(PORT6, SRV, PAY)),
           "tcp": (20, P.tcp(SRV, PORT4, 1, 2, P.ACK), P.tcp(PORT6, SRV, 1, 2, P.ACK)),
           "icmp": (8, P.icmp4_echo(PORT4, 1, PAY), P.icmp6_echo(PORT6, 1, PAY))}
    for kind, (hl, l4_4, l4_6) in l4s.items():
        b4 = _l4_of(P.ipv4(PEER4, POOL4, l4_4))
        b6 = _l4_of(P.ipv6(CLIENT6, PEER6, l4_6))
        for k in range(hl):
            c["v4_short_%s_%d" % (kind, k)] = (P.ipv4(PEER4, POOL4, P.raw(l4_4.proto, b4[:k])),
                                               ANY, DP)
            c["v6_short_%s_%d" % (kind, k)] = (P.ipv6(CLIENT6, PEER6, P.raw(l4_6.proto, b6[:k])),
                                               ANY, DP)
            c["v6_hbh_short_%s_%d" % (kind, k)] = (
                P.ipv6(CLIENT6, PEER6, P.raw(l4_6.proto, b6[:k]), exts=(P.hbh(),)), ANY, DP)
    # ... and the same inside ICMP errors (the quoted packet may be cut anywhere)
    inner4 = {"udp": P.udp(PORT4, SRV, PAY), "tcp": P.tcp(PORT4, SRV, 1, 2, P.ACK),
              "icmp": P.icmp4_echo(PORT4, 1, PAY)}
    inner6 = {"udp": P.udp(SRV, PORT6, PAY), "tcp": P.tcp(SRV, PORT6, 1, 2, P.ACK),
              "icmp": P.icmp6_echo(PORT6, 1, PAY, reply=True)}
    for kind in inner4:
        q4 = P.ipv4(POOL4, PEER4, inner4[kind])
        q6 = P.ipv6(PEER6, CLIENT6, inner6[kind])
        q6x = P.ipv6(PEER6, CLIENT6, inner6[kind], exts=(P.dstopts(),))
        for k in range(9):
            c["v4_err_inner_%s_l4_%d" % (kind, k)] = (
                P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 3, q4[:20 + k])), ANY, DPT)
            c["v6_err_inner_%s_l4_%d" % (kind, k)] = (
                P.ipv6(ROUTER6, PEER6, P.icmp6_error(1, 4, q6[:40 + k])), ANY, DPT)
            c["v6_err_inner_ext_%s_l4_%d" % (kind, k)] = (
                P.ipv6(ROUTER6, PEER6, P.icmp6_error(1, 4, q6x[:48 + k])), ANY, DPT)
        for k in range(0, 48, 3):   # the quoted IPv6 header / extension header cut short
            c["v6_err_inner_ext_%s_hdr_%d" % (kind, k)] = (
                P.ipv6(ROUTER6, PEER6, P.icmp6_error(1, 4, q6x[:k])), ANY, DPT)
        for k in range(0, 20, 2):
            c["v4_err_inner_%s_hdr_%d" % (kind, k)] = (
                P.ipv4(ROUTER4, POOL4, P.icmp4_error(3, 3, q4[:k])), ANY, DPT)
    return c


LYING = lying_cases()


@pytest.mark.parametrize("name", sorted(LYING))
def test_lying_lengths(xlat, name):
    pkt, reasons, verdicts = LYING[name]
    v, r, outs = run_one(xlat, name, pkt)
    assert v in verdicts, "%s: verdict %s (%s), expected one of %s" % (
        name, VERDICT_NAMES[v], cname(r), sorted(VERDICT_NAMES[x] for x in verdicts))
    if reasons is not None and v != TRANSLATED:
        assert cname(r) in reasons, "%s: reason %s, expected %s" % (name, cname(r), reasons)
    # Same packet through a Batch.
    (bv, br, _), = run_batch(xlat, [(name, pkt)], cap=4)
    assert (bv, br) == (v, r)
    # And every prefix of the lying packet.
    for n in range(len(pkt)):
        run_one(xlat, "%s[:%d]" % (name, n), pkt[:n])


def test_lying_all_in_one_batch(xlat):
    items = [(n, LYING[n][0]) for n in sorted(LYING)]
    single = [run_one(xlat, n, p)[:2] for n, p in items]
    bulk = [x[:2] for x in run_batch(xlat, items)]
    assert single == bulk


def test_garbage_bytes(xlat):
    """Random bytes with a plausible first byte: never an exception."""
    rng = np.random.default_rng(1234)
    items = []
    for i in range(3000):
        n = int(rng.integers(0, 120))
        b = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        if n:
            b[0] = (0x45, 0x60, 0x4F, 0x46, 0x00)[i % 5] if i % 7 else b[0]
        items.append(("garbage%d" % i, bytes(b)))
    for name, pkt in items:
        run_one(xlat, name, pkt)
    run_batch(xlat, items)


def test_prefixes_with_partial_flag(xlat):
    """The same prefixes flagged CHECKSUM_PARTIAL (a checksum to finish in full)."""
    items = [(n, p[:k]) for n, p in ALL_PACKETS for k in range(0, len(p), 3)]
    items += [(n, p) for n, p in ALL_PACKETS]
    for name, pkt in items:
        addr, port = mapping_for(pkt)
        before = np.array(xlat.counters, dtype=np.uint64).copy()
        v, r, outs = xlat.translate(pkt, addr, port, partial_csum=True)
        after = np.array(xlat.counters, dtype=np.uint64).copy()
        check_result(name + "[:%d]/partial" % len(pkt), pkt, int(v), int(r), outs,
                     before, after)


@pytest.mark.parametrize("out_bytes", [0, 1, 27, 64, 100, 1279, 1500, 3000, 20000])
def test_output_arena_too_small(xlat, out_bytes):
    """run() stops early when the output arena is full; what it reports stays
    inside the arena, and the rest can be processed after draining."""
    items = [(n, p) for n, p in ALL_PACKETS] * 3
    b = pl.Batch(capacity=len(items), in_bytes=len(items) * 2048, out_bytes=max(out_bytes, 1))
    b.clear()
    for _, pkt in items:
        addr, port = mapping_for(pkt)
        b.add(pkt, addr, port)
    processed = 0
    for _ in range(10 * len(items)):
        done = xlat.run(b)
        assert 0 < done <= b.count, "no progress (done=%d of %d)" % (done, b.count)
        for j in range(int(b.out_count)):
            assert int(b.out_offset[j]) + int(b.out_length[j]) <= max(out_bytes, 1)
            assert int(b.out_input[j]) < done
        for i in range(done):
            v, r = int(b.verdict[i]), int(b.reason[i])
            assert v in VERDICT_NAMES
            assert (v == TRANSLATED) == (r == 0)
            if v == DROP and r == cid("JSTAT_ENOMEM"):
                assert max(out_bytes, 1) < 4096     # only when nothing could fit
        processed += done
        if done == b.count:
            break
        # drain: keep the unprocessed inputs, in order, and go again
        inp = np.asarray(b.input)
        keep = [(bytes(inp[int(b.in_offset[i]):int(b.in_offset[i]) + int(b.in_length[i])]),
                 bytes(np.asarray(b.map_addr)[i]), int(b.map_port[i]))
                for i in range(done, b.count)]
        b.clear()
        for pkt, addr, port in keep:
            b.add(pkt, addr, port)
    assert processed == len(items)


def test_bounds_violations_zero():
    assert pl.bounds_violations() == 0
