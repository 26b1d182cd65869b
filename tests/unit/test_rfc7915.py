"""RFC 7915 header translation (sections 4.1, 4.4, 4.5, 5.1, 5.3, 5.4) plus the
Jool facts of spec/behaviour.md sections 2, 8, 10, 11, 12."""
import pytest

from _xlat import *  # noqa: F401,F403
from _xlat import (C_PORT, CLIENT6, OWN4, OWN6, P4_PORT, PEER4, PEER6, PEER_PORT, POOL4,
                   POOL6, OutKind, Verdict, assert_valid, expect_icmp_error,
                   expect_translated, expect_verdict, make, pl, udp4, udp6, v4, v6, xl)


# ======================================================= 6 -> 4 basic (5.1)
def test_64_udp_basic(t):
    r = xl(t, udp6(b"payload!", hlim=64))
    p = expect_translated(r, OutKind.IPV4)
    assert p.version == 4 and p.ihl == 20 and p.options == b""
    assert (p.src, p.dst) == (POOL4, PEER4)
    assert p.proto == pl.UDP
    assert (p.sport, p.dport) == (P4_PORT, PEER_PORT)
    assert p.payload == b"payload!"
    assert p.total_length == 20 + 8 + 8
    assert p.ttl == 63
    assert not p.mf and p.frag_offset == 0
    assert_valid(p)
    assert r.delta.get("JSTAT_RECEIVED6") == 1


def test_64_tcp_basic(t):
    pkt = v6(pl.tcp(C_PORT, PEER_PORT, seq=1234, ack=99, flags=pl.SYN | pl.ACK,
                    window=1000, payload=b"abc", options=b"\x02\x04\x05\xb4"))
    p = expect_translated(xl(t, pkt), OutKind.IPV4)
    assert p.proto == pl.TCP and (p.sport, p.dport) == (P4_PORT, PEER_PORT)
    assert (p.seq, p.ack, p.flags) == (1234, 99, pl.SYN | pl.ACK)
    assert p.l4[20:24] == b"\x02\x04\x05\xb4" and p.payload == b"abc"
    assert_valid(p)


def test_64_icmp_echo(t):
    for reply, out_type in ((False, 8), (True, 0)):
        pkt = v6(pl.icmp6_echo(C_PORT, 7, b"ping data", reply=reply))
        p = expect_translated(xl(t, pkt), OutKind.IPV4)
        assert p.proto == pl.ICMP and p.type == out_type and p.code == 0
        assert (p.icmp_id, p.icmp_seq) == (P4_PORT, 7)
        assert p.payload == b"ping data"
        assert_valid(p)


@pytest.mark.parametrize("tc", [0, 0x2e << 2, 0xff, 0x01])
def test_64_tos_copied_from_traffic_class(t, tc):
    p = expect_translated(xl(t, udp6(tc=tc, flow=0x12345)))
    assert p.tos == tc
    assert_valid(p)


def test_64_override_tos():
    t = make(override_tos=True, tos=0x48)
    p = expect_translated(xl(t, udp6(tc=0xb8)))
    assert p.tos == 0x48
    assert_valid(p)


@pytest.mark.parametrize("hlim", [2, 3, 64, 255])
def test_64_ttl_is_hop_limit_minus_one(t, hlim):
    p = expect_translated(xl(t, udp6(hlim=hlim)))
    assert p.ttl == hlim - 1
    assert_valid(p)


@pytest.mark.parametrize("hlim", [0, 1])
def test_64_hop_limit_exceeded(t, hlim):
    pkt = udp6(hlim=hlim)
    r = xl(t, pkt)
    e = expect_icmp_error(r, "JSTAT64_TTL", OutKind.ICMP6_ERROR)
    assert e.version == 6 and (e.src, e.dst) == (OWN6, CLIENT6)
    assert (e.type, e.code) == (3, 0)
    assert e.quoted == pkt  # small packet: quoted whole
    assert e.inner.src == CLIENT6 and e.inner.dport == PEER_PORT


def test_64_hop_limit_exceeded_error_fits_1280(t):
    pkt = udp6(b"z" * 1400, hlim=1)
    e = expect_icmp_error(xl(t, pkt, ), "JSTAT64_TTL", OutKind.ICMP6_ERROR)
    assert len(e.raw) <= 1280
    assert len(e.raw) >= 1200  # quotes as much as fits
    assert e.quoted == pkt[:len(e.quoted)]


def test_64_unfragmented_df_boundary(t):
    # behaviour.md 11: DF=1 iff the IPv4 packet is > 1260 bytes.
    small = udp6(b"a" * (1260 - 28))
    p = expect_translated(xl(t, small))
    assert p.total_length == 1260 and not p.df
    big = udp6(b"a" * (1261 - 28))
    p = expect_translated(xl(t, big))
    assert p.total_length == 1261 and p.df
    assert_valid(p)


def test_64_fragment_header_whole_packet(t):
    # atomic fragment (offset 0, M=0): DF=0, ID = low 16 bits of the fragment ID.
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"q" * 1300), exts=[pl.frag(0xABCD1234)])
    p = expect_translated(xl(t, pkt))
    assert not p.df and not p.mf and p.frag_offset == 0
    assert p.ident == 0x1234
    assert p.total_length == 20 + 8 + 1300  # fragment header not counted
    assert_valid(p)


def test_64_first_fragment_mf_copied(t):
    whole = pl.udp(C_PORT, PEER_PORT, bytes(range(200)) * 2)
    full = v6(whole)
    l4 = pl.parse(full).l4
    first = v6(pl.raw(pl.UDP, l4[:104]), exts=[pl.frag(0x00017777, 0, mf=True)])
    p = expect_translated(xl(t, first))
    assert p.mf and not p.df and p.frag_offset == 0 and p.ident == 0x7777
    assert p.total_length == 20 + 104
    assert (p.sport, p.dport) == (P4_PORT, PEER_PORT)
    # the checksum covers the whole datagram: compare with the translated whole one
    ref = pl.ipv4(POOL4, PEER4, pl.udp(P4_PORT, PEER_PORT, bytes(range(200)) * 2))
    assert p.l4_csum == pl.parse(ref).l4_csum
    assert pl.ip_csum_ok(p)


def test_64_extension_headers_removed(t):
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"ext"),
             exts=[pl.hbh(), pl.dstopts(b"\x01\x04\0\0\0\0"), pl.routing(0)])
    p = expect_translated(xl(t, pkt))
    assert p.proto == pl.UDP and p.total_length == 20 + 8 + 3 and p.payload == b"ext"
    assert p.ttl == 63
    assert_valid(p)


def test_64_segments_left_nonzero(t):
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"x"), exts=[pl.hbh(), pl.routing(2)])
    e = expect_icmp_error(xl(t, pkt), "JSTAT64_SEGMENTS_LEFT", OutKind.ICMP6_ERROR)
    assert (e.type, e.code) == (4, 0)
    assert e.pointer == 40 + 8 + 3
    assert (e.src, e.dst) == (OWN6, CLIENT6)
    assert e.quoted == pkt


def test_64_segments_left_nonzero_first_ext(t):
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"x"), exts=[pl.routing(1)])
    e = expect_icmp_error(xl(t, pkt), "JSTAT64_SEGMENTS_LEFT", OutKind.ICMP6_ERROR)
    assert (e.type, e.code, e.pointer) == (4, 0, 43)


@pytest.mark.parametrize("after", ["hbh", "dstopts", "routing"])
def test_64_frag_then_ext(t, after):
    ext = {"hbh": pl.hbh(), "dstopts": pl.dstopts(), "routing": pl.routing(0)}[after]
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"x"), exts=[pl.frag(5), ext])
    e = expect_icmp_error(xl(t, pkt), "JSTAT64_FRAG_THEN_EXT", OutKind.ICMP6_ERROR)
    assert (e.type, e.code) == (1, 1)
    assert e.dst == CLIENT6


def test_64_double_fragment_header(t):
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"x"), exts=[pl.frag(5), pl.frag(5)])
    expect_verdict(xl(t, pkt), Verdict.DROP, "JSTAT64_2XFRAG")


def test_64_too_big_ptb(t):
    # behaviour.md 10: IPv4 result > next-hop IPv4 MTU -> PTB, MTU max(1280, mtu4 + 20)
    t = make(mtu4_out=1400)
    pkt = udp6(b"b" * (1401 - 28))
    e = expect_icmp_error(xl(t, pkt), "JSTAT_PKT_TOO_BIG", OutKind.ICMP6_ERROR)
    assert (e.type, e.code, e.mtu) == (2, 0, 1420)
    assert (e.src, e.dst) == (OWN6, CLIENT6)
    assert len(e.raw) <= 1280
    ok = udp6(b"b" * (1400 - 28))
    assert expect_translated(xl(t, ok)).total_length == 1400


def test_64_too_big_ptb_small_mtu_clamped():
    t = make(mtu4_out=1000)
    e = expect_icmp_error(xl(t, udp6(b"b" * 1300)), "JSTAT_PKT_TOO_BIG", OutKind.ICMP6_ERROR)
    assert e.mtu == 1280


def test_64_pool6_mismatch(t):
    pkt = v6(pl.udp(C_PORT, PEER_PORT), dst="2001:db8:5::1")
    expect_verdict(xl(t, pkt), Verdict.PASS, "JSTAT_POOL6_MISMATCH")


def test_64_source_in_pool6_is_hairpin_loop(t):
    pkt = v6(pl.udp(C_PORT, PEER_PORT), src=pl.embed(POOL6, "192.0.2.77"))
    expect_verdict(xl(t, pkt), Verdict.DROP, "JSTAT_HAIRPIN_LOOP")


@pytest.mark.parametrize("proto", [132, 47, 50])
def test_64_unknown_l4(t, proto):
    pkt = v6(pl.raw(proto, b"\0" * 16))
    expect_verdict(xl(t, pkt), Verdict.PASS, "JSTAT_UNKNOWN_L4_PROTO")


@pytest.mark.parametrize("proto", [132, 47, 50])
def test_46_unknown_l4(t, proto):
    pkt = v4(pl.raw(proto, b"\0" * 16))
    expect_verdict(xl(t, pkt), Verdict.PASS, "JSTAT_UNKNOWN_L4_PROTO")


@pytest.mark.parametrize("reply", [False, True])
def test_64_drop_icmpv6_info(reply):
    t = make(drop_icmpv6_info=True)
    pkt = v6(pl.icmp6_echo(C_PORT, 1, b"x", reply=reply))
    expect_verdict(xl(t, pkt), Verdict.DROP, "JSTAT_ICMP6_FILTER")
    # errors and IPv4 echoes are unaffected
    expect_translated(xl(t, v4(pl.icmp4_echo(P4_PORT, 1, b"x", reply=reply))))
    from _xlat import err6
    expect_translated(xl(t, err6(1, 4)))


# ======================================================= 4 -> 6 basic (4.1)
def test_46_udp_basic(t):
    r = xl(t, udp4(b"payload!", ttl=64, ident=0x4242, df=True))
    p = expect_translated(r, OutKind.IPV6)
    assert p.version == 6 and p.exts == [] and p.frag is None
    assert (p.src, p.dst) == (PEER6, CLIENT6)
    assert p.proto == pl.UDP and (p.sport, p.dport) == (PEER_PORT, C_PORT)
    assert p.payload == b"payload!" and p.payload_length == 16
    assert p.hlim == 63 and p.flow == 0
    assert_valid(p)
    assert r.delta.get("JSTAT_RECEIVED4") == 1


def test_46_tcp_basic(t):
    pkt = v4(pl.tcp(PEER_PORT, P4_PORT, seq=5, ack=6, flags=pl.ACK | pl.PSH, payload=b"xyz"),
             df=True)
    p = expect_translated(xl(t, pkt), OutKind.IPV6)
    assert p.proto == pl.TCP and (p.sport, p.dport) == (PEER_PORT, C_PORT)
    assert (p.seq, p.ack, p.flags, p.payload) == (5, 6, pl.ACK | pl.PSH, b"xyz")
    assert_valid(p)


def test_46_icmp_echo(t):
    for reply, out_type in ((False, 128), (True, 129)):
        pkt = v4(pl.icmp4_echo(P4_PORT, 9, b"ping", reply=reply))
        p = expect_translated(xl(t, pkt), OutKind.IPV6)
        assert p.proto == pl.ICMPV6 and (p.type, p.code) == (out_type, 0)
        assert (p.icmp_id, p.icmp_seq, p.payload) == (C_PORT, 9, b"ping")
        assert_valid(p)


@pytest.mark.parametrize("tos", [0, 0xb8, 0xff, 0x03])
def test_46_traffic_class_copied(t, tos):
    p = expect_translated(xl(t, udp4(tos=tos)))
    assert p.tc == tos and p.flow == 0


def test_46_zeroize_traffic_class():
    t = make(zeroize_traffic_class=True)
    p = expect_translated(xl(t, udp4(tos=0xb8)))
    assert p.tc == 0 and p.flow == 0


@pytest.mark.parametrize("ttl", [2, 3, 128, 255])
def test_46_hop_limit_is_ttl_minus_one(t, ttl):
    p = expect_translated(xl(t, udp4(ttl=ttl)))
    assert p.hlim == ttl - 1


@pytest.mark.parametrize("ttl", [0, 1])
def test_46_ttl_exceeded(t, ttl):
    pkt = udp4(ttl=ttl)
    e = expect_icmp_error(xl(t, pkt), "JSTAT46_TTL", OutKind.ICMP4_ERROR)
    assert e.version == 4 and (e.src, e.dst) == (OWN4, PEER4)
    assert (e.type, e.code) == (11, 0)
    assert e.quoted == pkt
    assert len(e.raw) <= 576


def test_46_ttl_exceeded_error_fits_576(t):
    pkt = udp4(b"y" * 1000, ttl=1)
    e = expect_icmp_error(xl(t, pkt), "JSTAT46_TTL", OutKind.ICMP4_ERROR)
    assert 500 <= len(e.raw) <= 576
    assert e.quoted == pkt[:len(e.quoted)]


def test_46_options_ignored(t):
    pkt = udp4(b"opt", options=b"\x07\x07\x04" + b"\0" * 4 + b"\x00", df=True)  # record route
    p = expect_translated(xl(t, pkt))
    assert p.payload_length == 8 + 3 and p.payload == b"opt" and p.exts == []
    assert_valid(p)


@pytest.mark.parametrize("ssrr", [False, True])
def test_46_unexpired_source_route(t, ssrr):
    pkt = udp4(b"sr", options=pl.lsrr(("198.51.100.200",), pointer=4, ssrr=ssrr))
    e = expect_icmp_error(xl(t, pkt), "JSTAT46_SRC_ROUTE", OutKind.ICMP4_ERROR)
    assert (e.type, e.code) == (3, 5)
    assert (e.src, e.dst) == (OWN4, PEER4)
    assert e.quoted == pkt


def test_46_expired_source_route_translated(t):
    pkt = udp4(b"sr", options=pl.lsrr(("198.51.100.200",), pointer=8), df=True)
    p = expect_translated(xl(t, pkt))
    assert p.payload == b"sr"
    assert_valid(p)


def test_46_payload_length(t):
    pkt = udp4(b"w" * 333, options=b"\x01\x01\x01\x00", df=True)
    p = expect_translated(xl(t, pkt))
    assert p.payload_length == 8 + 333


def test_46_df1_no_fragment_header(t):
    # DF=1 and small: no fragment header (no atomic fragments, RFC 8021)
    p = expect_translated(xl(t, udp4(df=True, ident=1234)))
    assert p.frag is None


def test_46_df0_small_no_fragment_header(t):
    p = expect_translated(xl(t, udp4(df=False, ident=1234)))
    assert p.frag is None


def test_46_df1_bigger_than_lowest_ipv6_mtu_not_fragmented(t):
    # lowest-ipv6-mtu only applies to DF=0 packets
    pkt = udp4(b"d" * 1400, df=True)
    p = expect_translated(xl(t, pkt))
    assert p.frag is None and p.payload_length == 1408


def test_46_df1_too_big_frag_needed():
    t = make(mtu6_out=1400)
    pkt = udp4(b"d" * (1381 - 28), df=True)  # IPv6 result 1401
    e = expect_icmp_error(xl(t, pkt), "JSTAT_PKT_TOO_BIG", OutKind.ICMP4_ERROR)
    assert (e.type, e.code, e.mtu) == (3, 4, 1380)
    assert (e.src, e.dst) == (OWN4, PEER4)
    assert len(e.raw) <= 576
    ok = udp4(b"d" * (1380 - 28), df=True)
    assert expect_translated(xl(t, ok)).payload_length == 1360


def _check_fragments(frags, mtu, ident, reference):
    for f in frags:
        assert len(f.raw) <= mtu
        assert f.frag is not None and f.frag["ident"] == ident
        assert f.src == PEER6 and f.dst == CLIENT6 and f.hlim == 63
    for f in frags[:-1]:
        assert f.mf and len(f.l4) % 8 == 0
    assert not frags[-1].mf
    whole = pl.reassemble6(frags)
    assert whole == reference
    assert_valid(pl.parse(whole))


@pytest.mark.parametrize("mtu6,lowest,expect_mtu", [
    (1500, 1280, 1280),   # lowest-ipv6-mtu wins
    (1300, 1500, 1300),   # next-hop MTU wins
    (1500, 1500, 1500),
])
def test_46_df0_fragmentation(mtu6, lowest, expect_mtu):
    t = make(mtu6_out=mtu6, lowest_ipv6_mtu=lowest)
    payload = bytes(i & 0xFF for i in range(3000))
    pkt = udp4(payload, df=False, ident=0xBEEF)
    r = xl(t, pkt)
    frags = expect_translated(r, OutKind.IPV6, n=len(r.outputs))
    assert len(r.outputs) >= 2, r
    big = make(mtu6_out=9000, lowest_ipv6_mtu=9000)
    reference = expect_translated(xl(big, pkt)).raw
    _check_fragments(frags, expect_mtu, 0xBEEF, reference)
    # fragments as big as allowed (except the last)
    assert len(frags[0].raw) > expect_mtu - 8


def test_46_df0_fits_not_fragmented(t):
    pkt = udp4(b"f" * (1280 - 48), df=False)
    p = expect_translated(xl(t, pkt))
    assert p.frag is None and len(p.raw) == 1280


def test_46_df0_just_too_big_fragmented(t):
    pkt = udp4(b"f" * (1281 - 48), df=False, ident=3)
    r = xl(t, pkt)
    assert r.verdict == Verdict.TRANSLATED and len(r.outputs) == 2, r


def test_46_fragmentation_tcp():
    t = make()
    pkt = v4(pl.tcp(PEER_PORT, P4_PORT, flags=pl.ACK, payload=b"T" * 2000), ident=0x0102)
    r = xl(t, pkt)
    frags = r.pkts
    assert r.verdict == Verdict.TRANSLATED and len(frags) == 2
    reference = expect_translated(xl(make(mtu6_out=9000, lowest_ipv6_mtu=9000), pkt)).raw
    _check_fragments(frags, 1280, 0x0102, reference)


def test_46_bad_mtu():
    try:
        t = make(mtu6_out=1200)
    except ValueError:
        pytest.skip("Translator rejects mtu6_out < 1280 at construction")
    r = xl(t, udp4(b"m" * 1300, df=False))
    expect_verdict(r, Verdict.DROP, "JSTAT46_BAD_MTU")


def test_46_udp_zero_checksum_computed(t):
    pkt = v4(pl.udp(PEER_PORT, P4_PORT, b"zero csum", zero_csum=True), df=True)
    assert pl.parse(pkt).l4_csum == 0
    p = expect_translated(xl(t, pkt))
    assert p.l4_csum != 0
    assert_valid(p)


# ==================================================== RFC 6052 per prefix
PREFIXES = ["2001:db8::/32", "2001:db8:100::/40", "2001:db8:122::/48",
            "2001:db8:122:300::/56", "2001:db8:122:344::/64", "64:ff9b::/96",
            "2001:db8:aaaa:bbbb:cc:dddd::/96"]  # u octet (bits 64-71) zero
CLIENT_X = "fd00:1::10"  # outside every prefix below (a source inside pool6 is a loop)
V4S = ["192.0.2.33", "198.51.100.7", "0.0.0.1", "255.255.255.254", "10.20.30.40"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("peer4", V4S)
def test_rfc6052_64(prefix, peer4):
    t = make(pool6=prefix)
    dst6 = pl.embed(prefix, peer4)
    p = expect_translated(xl(t, pl.ipv6(CLIENT_X, dst6, pl.udp(C_PORT, PEER_PORT, b"6052"))))
    assert p.dst == peer4 and p.src == POOL4
    assert_valid(p)


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("peer4", V4S)
def test_rfc6052_46(prefix, peer4):
    t = make(pool6=prefix)
    p = expect_translated(xl(t, pl.ipv4(peer4, POOL4, pl.udp(PEER_PORT, P4_PORT, b"6052")),
                             CLIENT_X))
    assert p.src == pl.embed(prefix, peer4) and p.dst == CLIENT_X
    assert_valid(p)


@pytest.mark.parametrize("prefix", PREFIXES[:5])
def test_rfc6052_u_octet_ignored_on_extract(prefix):
    # bits 64-71 are not part of the IPv4 address (RFC 6052 2.2): a packet whose
    # destination has a non-zero u octet still maps to the same IPv4 address or is
    # refused, but never maps the u octet into the IPv4 address.
    t = make(pool6=prefix)
    dst6 = pl.embed(prefix, "192.0.2.33")
    b = bytearray(pl._a6(dst6))
    b[8] = 0x5A
    import ipaddress
    r = xl(t, pl.ipv6(CLIENT_X, str(ipaddress.IPv6Address(bytes(b))),
                      pl.udp(C_PORT, PEER_PORT, b"u")))
    if r.verdict == Verdict.TRANSLATED:
        assert r.pkt.dst == "192.0.2.33"


def test_rfc6052_pool6_mismatch_other_prefix():
    t = make(pool6="2001:db8:122::/48")
    pkt = pl.ipv6(CLIENT6, pl.embed("2001:db8:123::/48", PEER4), pl.udp(C_PORT, PEER_PORT))
    expect_verdict(xl(t, pkt), Verdict.PASS, "JSTAT_POOL6_MISMATCH")


# ========================================================== checksums
@pytest.mark.parametrize("delta", [1, 0x1234, 0xFFFE])
@pytest.mark.parametrize("kind", ["udp", "tcp", "echo"])
def test_64_wrong_checksum_stays_wrong(t, kind, delta):
    l4 = {"udp": pl.udp(C_PORT, PEER_PORT, b"c" * 11, csum_delta=delta),
          "tcp": pl.tcp(C_PORT, PEER_PORT, flags=pl.ACK, payload=b"c" * 11, csum_delta=delta),
          "echo": pl.icmp6_echo(C_PORT, 3, b"c" * 11, csum_delta=delta)}[kind]
    pkt = v6(l4)
    assert pl.csum_error(pl.parse(pkt)) == delta
    p = expect_translated(xl(t, pkt))
    assert pl.ip_csum_ok(p)
    assert pl.csum_error(p) == delta


@pytest.mark.parametrize("delta", [1, 0x1234, 0xFFFE])
@pytest.mark.parametrize("kind", ["udp", "tcp", "echo"])
def test_46_wrong_checksum_stays_wrong(t, kind, delta):
    l4 = {"udp": pl.udp(PEER_PORT, P4_PORT, b"c" * 11, csum_delta=delta),
          "tcp": pl.tcp(PEER_PORT, P4_PORT, flags=pl.ACK, payload=b"c" * 11, csum_delta=delta),
          "echo": pl.icmp4_echo(P4_PORT, 3, b"c" * 11, csum_delta=delta)}[kind]
    pkt = v4(l4, df=True)
    assert pl.csum_error(pl.parse(pkt)) == delta
    p = expect_translated(xl(t, pkt))
    assert pl.csum_error(p) == delta


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_64_partial_checksum_completed(t, kind):
    payload = b"partial" * 5
    l4 = pl.udp(C_PORT, PEER_PORT, payload) if kind == "udp" else \
        pl.tcp(C_PORT, PEER_PORT, flags=pl.ACK, payload=payload)
    l4.csum = pl.ones_sum(pl.pseudo6(CLIENT6, PEER6, l4.proto, len(l4.data)))
    pkt = v6(l4)
    assert not pl.l4_csum_ok(pl.parse(pkt))
    p = expect_translated(xl(t, pkt, partial_csum=True))
    assert_valid(p)


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_46_partial_checksum_completed(t, kind):
    payload = b"partial" * 5
    l4 = pl.udp(PEER_PORT, P4_PORT, payload) if kind == "udp" else \
        pl.tcp(PEER_PORT, P4_PORT, flags=pl.ACK, payload=payload)
    l4.csum = pl.ones_sum(pl.pseudo4(PEER4, POOL4, l4.proto, len(l4.data)))
    pkt = v4(l4, df=True)
    p = expect_translated(xl(t, pkt, partial_csum=True))
    assert_valid(p)


def test_46_ipv4_header_checksum_ignored_or_checked(t):
    # A wrong IPv4 header checksum must never produce a translated packet whose
    # own checksums are wrong.
    r = xl(t, udp4(df=True, hdr_csum_delta=5))
    if r.verdict == Verdict.TRANSLATED:
        assert_valid(r.pkt)
