"""RFC 7915 ICMP translation: sections 4.2/4.3 (ICMPv4 -> ICMPv6) and 5.2/5.3
(ICMPv6 -> ICMPv4), with the Jool facts of spec/behaviour.md sections 8.4, 10, 11."""
import pytest

from _xlat import *  # noqa: F401,F403
from _xlat import (C_PORT, CLIENT6, OWN6, P4_PORT, PEER4, PEER6, PEER_PORT, POOL4, POOL6,
                   ROUTER4, OutKind, Verdict, assert_valid, err4, err6,
                   expect_translated, expect_verdict, inner4_of_64, inner6_of_46, make, pl,
                   v4, v6, xl)

# ------------------------------------------------------------ tables
# (ICMPv4 type, code) -> (ICMPv6 type, code) | "drop" ; RFC 7915 section 4.2
V4_TO_V6 = {
    (3, 0): (1, 0), (3, 1): (1, 0), (3, 2): (4, 1), (3, 3): (1, 4), (3, 4): (2, 0),
    (3, 5): (1, 0), (3, 6): (1, 0), (3, 7): (1, 0), (3, 8): (1, 0), (3, 9): (1, 1),
    (3, 10): (1, 1), (3, 11): (1, 0), (3, 12): (1, 0), (3, 13): (1, 1), (3, 14): "drop",
    (3, 15): (1, 1), (3, 16): "drop", (3, 200): "drop",
    (11, 0): (3, 0), (11, 1): (3, 1),
    (12, 0): (4, 0), (12, 1): "drop", (12, 2): (4, 0), (12, 3): "drop",
    (4, 0): "drop",   # source quench: obsolete
    (5, 0): "drop", (5, 1): "drop",  # redirect: single hop
}
# (ICMPv6 type, code) -> (ICMPv4 type, code) | "drop" ; RFC 7915 section 5.2
V6_TO_V4 = {
    (1, 0): (3, 1), (1, 1): (3, 10), (1, 2): (3, 1), (1, 3): (3, 1), (1, 4): (3, 3),
    (1, 5): "drop", (1, 6): "drop", (1, 7): "drop", (1, 100): "drop",
    (2, 0): (3, 4),
    (3, 0): (11, 0), (3, 1): (11, 1),
    (4, 0): (12, 0), (4, 1): (3, 2), (4, 2): "drop", (4, 3): "drop",
}
# informational types with no equivalent: untranslatable (PASS) at the tuple stage
V4_INFO_UNKNOWN = [9, 10, 13, 14, 15, 16, 17, 18, 6, 30, 42, 253]
V6_INFO_UNKNOWN = [130, 131, 132, 133, 134, 135, 136, 137, 139, 140, 143, 200, 255]
V6_ERR_UNKNOWN = [100, 127]  # error range, unassigned: not an error Jool knows -> PASS

# RFC 7915 Figure 6: ICMPv6 Parameter Problem pointer -> ICMPv4 pointer
PTR_6_TO_4 = {0: 0, 1: 1, 4: 2, 5: 2, 6: 9, 7: 8}  # 2, 3 (flow label): n/a
PTR_6_TO_4.update({i: 12 for i in range(8, 24)})
PTR_6_TO_4.update({i: 16 for i in range(24, 40)})
# behaviour.md 10.1: ICMPv4 pointer -> ICMPv6 pointer
PTR_4_TO_6 = {0: 0, 1: 1, 2: 4, 3: 4, 8: 7, 9: 6}
PTR_4_TO_6.update({i: 8 for i in range(12, 16)})
PTR_4_TO_6.update({i: 24 for i in range(16, 20)})


def check_inner_46(e, inner_hlim=30):
    """The quoted packet of a translated 4->6 error: CLIENT6:C_PORT -> PEER6."""
    i = e.inner
    assert i is not None and i.version == 6
    assert (i.src, i.dst) == (CLIENT6, PEER6)
    assert (i.sport, i.dport) == (C_PORT, PEER_PORT)
    assert i.hlim == inner_hlim  # inner TTL/hop limit never decremented
    return i


def check_inner_64(e, inner_ttl=30):
    """The quoted packet of a translated 6->4 error: PEER4 -> POOL4:P4_PORT."""
    i = e.inner
    assert i is not None and i.version == 4
    assert (i.src, i.dst) == (PEER4, POOL4)
    assert (i.sport, i.dport) == (PEER_PORT, P4_PORT)
    assert i.ttl == inner_ttl
    assert pl.ip_csum_ok(i), "inner IPv4 header checksum"
    return i


# ============================================================ 4 -> 6 errors
@pytest.mark.parametrize("tc", sorted(V4_TO_V6), ids=lambda x: "%d-%d" % x)
def test_46_icmp_error_table(t, tc):
    type4, code4 = tc
    want = V4_TO_V6[tc]
    pkt = err4(type4, code4, mtu=1400 if tc == (3, 4) else 0, ttl=50)
    r = xl(t, pkt)
    if want == "drop":
        assert r.verdict == Verdict.DROP, r
        assert len(r.outputs) == 0, r
        assert "JSTAT_SUCCESS" not in r.delta
        return
    e = expect_translated(r, OutKind.IPV6)
    assert e.proto == pl.ICMPV6 and (e.type, e.code) == want
    assert e.dst == CLIENT6 and e.hlim == 49
    assert_valid(e)
    i = check_inner_46(e)
    assert i.payload_length == 28 and pl.l4_csum_ok(i), "inner UDP checksum"
    if tc == (3, 2):
        assert e.pointer == 6  # next header field (RFC 7915 4.2)


@pytest.mark.parametrize("type4", V4_INFO_UNKNOWN)
def test_46_icmp_unknown_info_passes(t, type4):
    pkt = v4(pl.icmp4(type4, 0, b"\0\x01\0\x02", b"data"))
    expect_verdict(xl(t, pkt), Verdict.PASS, "JSTAT_UNKNOWN_ICMP4_TYPE")


@pytest.mark.parametrize("type4,code4", [(3, 14), (3, 16), (12, 1), (4, 0), (5, 0)])
def test_46_icmp_untranslatable_error_counter(t, type4, code4):
    r = xl(t, err4(type4, code4))
    expect_verdict(r, Verdict.DROP, "JSTAT_UNKNOWN_ICMP4_TYPE")


@pytest.mark.parametrize("ptr4", range(0, 24))
@pytest.mark.parametrize("code", [0, 2])
def test_46_param_problem_pointer(t, ptr4, code):
    r = xl(t, err4(12, code, pointer=ptr4))
    if ptr4 in PTR_4_TO_6:
        e = expect_translated(r, OutKind.IPV6)
        assert (e.type, e.code, e.pointer) == (4, 0, PTR_4_TO_6[ptr4])
        assert_valid(e)
        check_inner_46(e)
    else:
        expect_verdict(r, Verdict.DROP, "JSTAT46_UNTRANSLATABLE_PARAM_PROBLEM_PTR")


@pytest.mark.parametrize("mtu_field,mtu6_out,mtu4_in,expected", [
    (1400, 1500, 1500, 1420),
    (1480, 1500, 1500, 1500),
    (1400, 1300, 1500, 1300),
    (1400, 1500, 1290, 1310),
    (1000, 1500, 1500, 1280),   # never below 1280
    (1260, 1500, 1500, 1280),
    (1261, 1500, 1500, 1281),
    (9000, 9000, 9000, 9000),
])
def test_46_frag_needed_to_ptb_mtu(mtu_field, mtu6_out, mtu4_in, expected):
    # behaviour.md 10.1: max(1280, min(MTU + 20, mtu6_out, mtu4_in + 20))
    t = make(mtu6_out=mtu6_out, mtu4_in=mtu4_in)
    e = expect_translated(xl(t, err4(3, 4, mtu=mtu_field)), OutKind.IPV6)
    assert (e.type, e.code) == (2, 0)
    assert e.mtu == expected
    assert_valid(e)
    check_inner_46(e)


@pytest.mark.parametrize("inner_len,plateaus,mtu6_out,expected", [
    (1500, None, 1500, 1500),                    # 1492 + 20 = 1512 -> capped 1500
    (1500, None, 9000, 1512),
    (1400, None, 9000, 1280),                    # 1006 + 20 -> raised to 1280
    (1450, (9000, 1400, 1300), 9000, 1420),
    (1400, (9000, 1400, 1300), 9000, 1320),      # strictly smaller than 1400
    (9000, (9000, 1400, 1300), 9000, 1420),
    (2000, (9000, 8000, 1900), 9000, 1920),
    (1300, (9000, 1400, 1300), 9000, 1280),      # none smaller -> 0 -> 1280
])
def test_46_frag_needed_mtu0_plateaus(inner_len, plateaus, mtu6_out, expected):
    kw = dict(mtu6_out=mtu6_out, mtu4_in=9000)
    if plateaus is not None:
        kw["mtu_plateaus"] = plateaus
    t = make(**kw)
    # quoted packet claims inner_len bytes but only its beginning is quoted
    q = pl.ipv4(POOL4, PEER4, pl.udp(P4_PORT, PEER_PORT, b"p" * 100), ttl=30,
                total_length=inner_len)
    e = expect_translated(xl(t, err4(3, 4, quoted=q, mtu=0)), OutKind.IPV6)
    assert (e.type, e.code, e.mtu) == (2, 0, expected)
    assert_valid(e)
    i = check_inner_46(e)
    assert i.payload_length == inner_len - 20


def test_46_error_source_icmpv6_errors_better_on(t):
    e = expect_translated(xl(t, err4(3, 3)))
    assert e.src == pl.embed(POOL6, ROUTER4) and e.dst == CLIENT6


def test_46_error_source_icmpv6_errors_better_off():
    t = make(source_icmpv6_errors_better=False)
    e = expect_translated(xl(t, err4(3, 3)))
    assert e.src == PEER6 and e.dst == CLIENT6
    check_inner_46(e)


def test_46_error_from_peer_itself(t):
    e = expect_translated(xl(t, err4(3, 3, src=PEER4)))
    assert e.src == PEER6
    assert_valid(e)


def test_46_error_tcp_inner(t):
    q = pl.ipv4(POOL4, PEER4, pl.tcp(P4_PORT, PEER_PORT, seq=77, flags=pl.SYN), ttl=9)
    e = expect_translated(xl(t, err4(3, 1, quoted=q)))
    i = e.inner
    assert i.proto == pl.TCP and (i.src, i.dst, i.sport, i.dport) == (
        CLIENT6, PEER6, C_PORT, PEER_PORT)
    assert i.seq == 77 and i.hlim == 9
    assert pl.l4_csum_ok(i)
    assert_valid(e)


def test_46_error_echo_inner(t):
    q = pl.ipv4(POOL4, PEER4, pl.icmp4_echo(P4_PORT, 5, b"abc"), ttl=9)
    e = expect_translated(xl(t, err4(11, 0, quoted=q)))
    i = e.inner
    assert i.proto == pl.ICMPV6 and (i.type, i.icmp_id, i.icmp_seq) == (128, C_PORT, 5)
    assert (i.src, i.dst) == (CLIENT6, PEER6)
    assert pl.l4_csum_ok(i)
    assert_valid(e)


def test_46_error_truncated_to_1280(t):
    q = pl.ipv4(POOL4, PEER4, pl.udp(P4_PORT, PEER_PORT, b"L" * 1372), ttl=30)  # 1400 bytes
    pkt = err4(3, 1, quoted=q)
    e = expect_translated(xl(t, pkt))
    assert len(e.raw) == 1280
    assert e.payload_length == 1240
    assert_valid(e)
    i = check_inner_46(e)
    assert i.truncated and i.payload_length == 1380
    assert i.l4[8:] == b"L" * (len(i.l4) - 8)


def test_46_error_truncated_inner_still_translated(t):
    # router quoted only 28 bytes (IP header + 8) of a longer packet
    full = pl.ipv4(POOL4, PEER4, pl.udp(P4_PORT, PEER_PORT, b"Q" * 300), ttl=30)
    e = expect_translated(xl(t, err4(3, 3, quoted=full[:28])))
    assert_valid(e)
    i = check_inner_46(e)
    assert i.payload_length == 308 and len(i.raw) == 48


def test_46_error_inner_icmp_error_dropped(t):
    inner_err = pl.ipv4(POOL4, PEER4, pl.icmp4_error(3, 3, inner4_of_64()), ttl=30)
    expect_verdict(xl(t, err4(3, 1, quoted=inner_err)), Verdict.DROP,
                   "JSTAT_DOUBLE_ICMP4_ERROR")


def test_46_error_bad_checksum_dropped(t):
    expect_verdict(xl(t, err4(3, 1, csum_delta=0x10)), Verdict.DROP, "JSTAT46_ICMP_CSUM")


def test_46_error_checksum_recomputed_even_if_inner_csum_wrong(t):
    q = pl.ipv4(POOL4, PEER4, pl.udp(P4_PORT, PEER_PORT, b"i" * 10, csum_delta=3), ttl=30)
    e = expect_translated(xl(t, err4(3, 1, quoted=q)))
    assert_valid(e)  # outer ICMPv6 checksum correct


def test_46_error_rfc4884_extension(t):
    ext = pl.ext_structure(((1, 1, b"\x00\x01\x02\x03"), (2, 1, b"ABCDEFGH")))
    pkt = err4(3, 1, ext=ext)
    assert pl.parse(pkt).icmp_length == 32
    e = expect_translated(xl(t, pkt))
    assert_valid(e)
    assert e.icmp_length and e.icmp_length * 8 >= 128
    assert e.ext == ext
    i = check_inner_46(e)
    assert e.quoted[len(i.raw[:68]):] == b"\0" * (len(e.quoted) - 68)  # padding


def test_46_error_rfc4884_time_exceeded(t):
    ext = pl.ext_structure()
    e = expect_translated(xl(t, err4(11, 0, ext=ext)))
    assert (e.type, e.code) == (3, 0)
    assert e.ext == ext and e.icmp_length * 8 >= 128
    assert_valid(e)


def test_46_error_ttl_exceeded_outer(t):
    # an ICMPv4 error with TTL 1 is itself subject to the TTL rule, but Jool never
    # sends errors about errors: dropped silently or translated, never an ICMP back.
    r = xl(t, err4(3, 1, ttl=1))
    assert r.verdict != Verdict.DROP_ICMP and OutKind.ICMP4_ERROR not in r.kinds, r


# ============================================================ 6 -> 4 errors
@pytest.mark.parametrize("tc", sorted(V6_TO_V4), ids=lambda x: "%d-%d" % x)
def test_64_icmp_error_table(t, tc):
    type6, code6 = tc
    want = V6_TO_V4[tc]
    pkt = err6(type6, code6, mtu=1400 if type6 == 2 else 0, hlim=50)
    r = xl(t, pkt)
    if want == "drop":
        expect_verdict(r, Verdict.DROP, "JSTAT_UNKNOWN_ICMP6_TYPE")
        return
    e = expect_translated(r, OutKind.IPV4)
    assert e.proto == pl.ICMP and (e.type, e.code) == want
    assert (e.src, e.dst) == (POOL4, PEER4) and e.ttl == 49
    assert_valid(e)
    i = check_inner_64(e)
    assert i.total_length == 48 and pl.l4_csum_ok(i), "inner UDP checksum"


@pytest.mark.parametrize("type6", V6_INFO_UNKNOWN + V6_ERR_UNKNOWN)
def test_64_icmp_unknown_type_passes(t, type6):
    pkt = v6(pl.icmp6(type6, 0, b"\0\x01\0\x02", b"data"))
    expect_verdict(xl(t, pkt), Verdict.PASS, "JSTAT_UNKNOWN_ICMP6_TYPE")


@pytest.mark.parametrize("ptr6", list(range(0, 44)) + [100, 1000, 70000])
def test_64_param_problem_pointer(t, ptr6):
    r = xl(t, err6(4, 0, pointer=ptr6))
    if ptr6 in PTR_6_TO_4:
        e = expect_translated(r, OutKind.IPV4)
        assert (e.type, e.code, e.pointer) == (12, 0, PTR_6_TO_4[ptr6])
        assert_valid(e)
        check_inner_64(e)
    else:
        expect_verdict(r, Verdict.DROP, "JSTAT64_UNTRANSLATABLE_PARAM_PROB_PTR")


@pytest.mark.parametrize("ptb,mtu4_out,expected", [
    (1400, 1500, 1380),
    (1500, 1400, 1400),
    (1280, 1500, 1260),
    (1500, 1500, 1480),
])
def test_64_ptb_to_frag_needed_mtu(ptb, mtu4_out, expected):
    # RFC 7915 5.2: minimum(advertised MTU - 20, MTU of IPv4 next hop, IPv6 MTU - 20)
    t = make(mtu4_out=mtu4_out, mtu6_in=1500)
    e = expect_translated(xl(t, err6(2, 0, mtu=ptb)), OutKind.IPV4)
    assert (e.type, e.code, e.mtu) == (3, 4, expected)
    assert_valid(e)
    check_inner_64(e)


def test_64_error_tcp_inner(t):
    q = pl.ipv6(PEER6, CLIENT6, pl.tcp(PEER_PORT, C_PORT, seq=5, flags=pl.ACK), hlim=7)
    e = expect_translated(xl(t, err6(1, 4, quoted=q)))
    i = e.inner
    assert i.proto == pl.TCP and (i.src, i.dst, i.sport, i.dport) == (
        PEER4, POOL4, PEER_PORT, P4_PORT)
    assert i.ttl == 7 and i.seq == 5
    assert pl.l4_csum_ok(i) and pl.ip_csum_ok(i)
    assert_valid(e)


def test_64_error_echo_inner(t):
    q = pl.ipv6(PEER6, CLIENT6, pl.icmp6_echo(C_PORT, 3, b"abc", reply=True), hlim=7)
    e = expect_translated(xl(t, err6(3, 0, quoted=q)))
    i = e.inner
    assert i.proto == pl.ICMP and (i.type, i.icmp_id) == (0, P4_PORT)
    assert (i.src, i.dst) == (PEER4, POOL4)
    assert pl.l4_csum_ok(i)
    assert_valid(e)


def test_64_error_outer_from_client(t):
    e = expect_translated(xl(t, err6(1, 4, src=CLIENT6)))
    assert (e.src, e.dst) == (POOL4, PEER4)


def test_64_error_truncated_to_576(t):
    q = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"L" * 1152), hlim=30)  # 1200
    e = expect_translated(xl(t, err6(1, 4, quoted=q)))
    assert len(e.raw) == 576 and e.total_length == 576
    assert_valid(e)
    i = check_inner_64(e)
    assert i.truncated and i.total_length == 1180


def test_64_error_truncated_inner_still_translated(t):
    full = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"Q" * 300), hlim=30)
    e = expect_translated(xl(t, err6(1, 4, quoted=full[:48])))
    assert_valid(e)
    i = check_inner_64(e)
    assert i.total_length == 328 and len(i.raw) == 28


def test_64_error_inner_with_extension_headers(t):
    q = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"e" * 10), hlim=30,
                exts=[pl.hbh(), pl.dstopts()])
    e = expect_translated(xl(t, err6(1, 4, quoted=q)))
    i = check_inner_64(e)
    assert i.total_length == 20 + 18 and i.proto == pl.UDP
    assert_valid(e)


def test_64_error_inner_icmp_error_dropped(t):
    inner_err = pl.ipv6(PEER6, CLIENT6, pl.icmp6_error(1, 4, inner6_of_46()), hlim=30)
    expect_verdict(xl(t, err6(1, 4, quoted=inner_err)), Verdict.DROP,
                   "JSTAT_DOUBLE_ICMP6_ERROR")


def test_64_error_bad_checksum_dropped(t):
    expect_verdict(xl(t, err6(1, 4, csum_delta=0x10)), Verdict.DROP, "JSTAT64_ICMP_CSUM")


def test_64_error_rfc4884_extension(t):
    ext = pl.ext_structure(((1, 1, b"\x00\x01\x02\x03"),))
    pkt = err6(1, 4, ext=ext)
    assert pl.parse(pkt).icmp_length == 16
    e = expect_translated(xl(t, pkt))
    assert_valid(e)
    assert e.icmp_length and e.icmp_length * 4 >= 128
    assert e.ext == ext
    check_inner_64(e)
    assert e.quoted[48:] == b"\0" * (len(e.quoted) - 48)


def test_64_error_rfc4884_time_exceeded(t):
    ext = pl.ext_structure()
    e = expect_translated(xl(t, err6(3, 0, ext=ext)))
    assert (e.type, e.code) == (11, 0)
    assert e.ext == ext and e.icmp_length * 4 >= 128
    assert_valid(e)


def test_64_icmpv6_error_not_filtered_by_drop_icmpv6_info():
    t = make(drop_icmpv6_info=True)
    expect_translated(xl(t, err6(3, 0)))


def test_64_generated_errors_never_about_errors(t):
    # hop limit 1 on an ICMPv6 error: no ICMP error about an error
    r = xl(t, err6(1, 4, hlim=1))
    assert OutKind.ICMP6_ERROR not in r.kinds, r


def test_64_ptb_generated_quotes_original(t):
    t = make(mtu4_out=1300)
    pkt = v6(pl.udp(C_PORT, PEER_PORT, b"k" * 1400))
    r = xl(t, pkt)
    assert r.verdict == Verdict.DROP_ICMP
    e = r.pkt
    assert e.quoted == pkt[:len(e.quoted)] and len(e.raw) == 1280
    assert e.src == OWN6


def test_46_error_inner_non_first_fragment_dropped(t):
    # behaviour.md 10.1: inner packets that are non-first fragments -> drop
    q = pl.ipv4(POOL4, PEER4, pl.raw(pl.UDP, b"f" * 16), ttl=30, offset=64, mf=True)
    r = xl(t, err4(3, 1, quoted=q))
    assert r.verdict == Verdict.DROP and len(r.outputs) == 0, r


def test_64_error_inner_non_first_fragment_dropped(t):
    q = pl.ipv6(PEER6, CLIENT6, pl.raw(pl.UDP, b"f" * 16), hlim=30,
                exts=[pl.frag(1, 64, True)])
    r = xl(t, err6(1, 4, quoted=q))
    assert r.verdict == Verdict.DROP and len(r.outputs) == 0, r
