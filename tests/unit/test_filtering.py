"""Filtering globals in the stateful path (spec/behaviour.md §8, spec/globals.md #9-#14)."""
import pytest

from _nat64 import (C_PORT, CLIENT6, EST, OWN4, PEER4, PEER4B, PEER6, PEER6B, PEER_PORT,
                    POOL4, ROUTER4, ROUTER6, STATIC_PORT, SYN4, TRANS, UDP_TO, OutKind,
                    Verdict, check_46, check_64, echo4, echo6, expect_held,
                    expect_icmp4_error, expect_translated, expect_verdict, make_nat, pl, tables,
                    tcp4, tcp6, udp4, udp6)

_FIXTURES = (make_nat, tables)

T0 = 30_000
SYN, ACK, FIN, RST = pl.SYN, pl.ACK, pl.FIN, pl.RST


# ====================================================== address-dependent filtering
@pytest.fixture
def adf(make_nat):
    return make_nat(address_dependent_filtering=True)


def test_adf_udp_same_address_other_port_allowed(adf):
    mask = expect_translated(adf.send(udp6(), T0), 4).sport
    r = adf.send(udp4(mask, sport=PEER_PORT + 1), T0 + 1)
    p = expect_translated(r, 6)
    check_46(p, proto=pl.UDP, sport=PEER_PORT + 1)
    assert "JSTAT_ADF" not in r.delta
    s = adf.session("udp", T0 + 1, dst4=PEER4, dport4=PEER_PORT + 1)
    assert s is not None and s.expires_in_ms == UDP_TO
    assert len(adf.sessions("udp", T0 + 1)) == 2


def test_adf_udp_other_address_dropped_with_icmp(adf):
    mask = expect_translated(adf.send(udp6(), T0), 4).sport
    pkt = udp4(mask, src=PEER4B, sport=PEER_PORT)
    r = adf.send(pkt, T0 + 1)
    e = expect_icmp4_error(r, "JSTAT_ADF", 3, 13, PEER4B)
    assert e.src in (OWN4, POOL4), e
    assert e.inner.src == PEER4B and e.inner.dst == POOL4
    assert e.inner.sport == PEER_PORT and e.inner.dport == mask
    assert e.quoted == pkt
    assert r.delta.get("JSTAT_ICMP4ERR_SUCCESS") == 1
    assert len(adf.sessions("udp", T0 + 1)) == 1, "no session for the rejected peer"
    # The existing session is untouched and keeps working.
    expect_translated(adf.send(udp4(mask), T0 + 2), 6)


def test_adf_udp_static_bib_without_sessions_rejects(adf):
    adf.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = adf.send(udp4(STATIC_PORT), T0)
    expect_icmp4_error(r, "JSTAT_ADF", 3, 13, PEER4)
    assert adf.sessions("udp", T0) == []


def test_adf_udp_permission_ends_with_the_session(adf):
    adf.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_translated(adf.send(udp6(), T0), 4)
    expect_translated(adf.send(udp4(STATIC_PORT, sport=999), T0 + 1), 6)
    adf.expire(T0 + 1 + UDP_TO)
    assert adf.sessions("udp", T0 + 1 + UDP_TO) == []
    r = adf.send(udp4(STATIC_PORT, sport=999), T0 + 2 + UDP_TO)
    expect_icmp4_error(r, "JSTAT_ADF", 3, 13, PEER4)


def test_adf_off_other_address_allowed(make_nat):
    n = make_nat()
    mask = expect_translated(n.send(udp6(), T0), 4).sport
    r = n.send(udp4(mask, src=PEER4B), T0 + 1)
    expect_translated(r, 6)
    assert "JSTAT_ADF" not in r.delta


def test_adf_icmp_other_address_dropped(adf):
    mask = expect_translated(adf.send(echo6(321), T0), 4).icmp_id
    # The peer's reply matches the session.
    q = expect_translated(adf.send(echo4(mask, reply=True), T0 + 1), 6)
    assert (q.type, q.icmp_id) == (129, 321)
    # A stranger's echo to the same identifier is rejected.
    pkt = echo4(mask, src=PEER4B)
    e = expect_icmp4_error(adf.send(pkt, T0 + 2), "JSTAT_ADF", 3, 13, PEER4B)
    assert e.quoted == pkt
    assert len(adf.sessions("icmp", T0 + 2)) == 1


def test_adf_icmp_static_bib_other_address(adf):
    adf.t.bib_add("icmp", CLIENT6, 321, POOL4, STATIC_PORT)
    expect_translated(adf.send(echo6(321), T0), 4)
    expect_icmp4_error(adf.send(echo4(STATIC_PORT, src=PEER4B), T0 + 1), "JSTAT_ADF",
                       3, 13, PEER4B)


def test_adf_tcp_syn_from_other_address_is_stored_type2(adf):
    """TCP has no address check: the SYN is held 6 s (type 2) and released as a session
    when the client's IPv6 SYN arrives."""
    expect_translated(adf.send(tcp6(SYN), T0), 4)
    mask = adf.mask("tcp")
    expect_translated(adf.send(tcp4(SYN | ACK, mask), T0 + 1), 6)
    r = adf.send(tcp4(SYN, mask, src=PEER4B, sport=4000), T0 + 2)
    expect_held(r, "JSTAT_TYPE2PKT")
    assert "JSTAT_ADF" not in r.delta
    s = adf.session("tcp", T0 + 2, dst4=PEER4B)
    assert s.state == "V4_INIT" and s.expires_in_ms == SYN4
    assert (s.dst6, s.dport6, s.sport4) == (PEER6B, 4000, mask)
    # The client answers with its own SYN: established, the held SYN is dropped.
    r = adf.send(tcp6(SYN | ACK, dst=PEER6B, dport=4000), T0 + 3)
    p = expect_translated(r, 4)
    check_64(p, mask, dst=PEER4B, dport=4000)
    s = adf.session("tcp", T0 + 3, dst4=PEER4B)
    assert s.state == "ESTABLISHED" and s.expires_in_ms == EST
    assert adf.expire(T0 + 2 + SYN4) == []


def test_adf_tcp_syn_same_address_other_port_is_stored(adf):
    expect_translated(adf.send(tcp6(SYN), T0), 4)
    mask = adf.mask("tcp")
    r = adf.send(tcp4(SYN, mask, sport=PEER_PORT + 1), T0 + 1)
    expect_held(r, "JSTAT_TYPE2PKT")


def test_adf_tcp_stored_syn_times_out(adf):
    expect_translated(adf.send(tcp6(SYN), T0), 4)
    mask = adf.mask("tcp")
    syn = tcp4(SYN, mask, src=PEER4B)
    expect_held(adf.send(syn, T0 + 1), "JSTAT_TYPE2PKT")
    assert adf.expire(T0 + SYN4) == []
    before = adf.counter("JSTAT_ICMP4ERR_SUCCESS")
    outs = adf.expire(T0 + 1 + SYN4)
    assert len(outs) == 1
    kind, e = outs[0]
    assert kind == OutKind.ICMP4_ERROR and (e.type, e.code, e.dst) == (3, 3, PEER4B)
    assert e.quoted == syn
    assert adf.session("tcp", T0 + 1 + SYN4, dst4=PEER4B) is None
    assert adf.session("tcp", T0 + 1 + SYN4, dst4=PEER4) is not None
    # stats.md: errors produced outside the per-packet path are not counted.
    assert adf.counter("JSTAT_ICMP4ERR_SUCCESS") == before


# ================================================== drop-externally-initiated-tcp
@pytest.fixture
def det(make_nat):
    return make_nat(drop_externally_initiated_tcp=True)


def test_drop_external_tcp_ipv6_initiated_unaffected(det):
    expect_translated(det.send(tcp6(SYN), T0), 4)
    mask = det.mask("tcp")
    r = det.send(tcp4(SYN | ACK, mask), T0 + 1)
    check_46(expect_translated(r, 6))
    assert det.sessions("tcp", T0 + 1)[0].state == "ESTABLISHED"
    expect_translated(det.send(tcp4(ACK, mask, payload=b"x"), T0 + 2), 6)


def test_drop_external_tcp_syn_to_dynamic_bib_other_peer(det):
    expect_translated(det.send(tcp6(SYN), T0), 4)
    mask = det.mask("tcp")
    r = det.send(tcp4(SYN, mask, src=PEER4B), T0 + 1)
    expect_verdict(r, Verdict.DROP, "JSTAT_V4_SYN")
    assert len(det.sessions("tcp", T0 + 1)) == 1


def test_drop_external_tcp_static_bib(det):
    det.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = det.send(tcp4(SYN, STATIC_PORT), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_V4_SYN")
    assert det.sessions("tcp", T0) == []


def test_drop_external_tcp_does_not_affect_udp(det):
    det.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_translated(det.send(udp4(STATIC_PORT), T0), 6)


# ============================================================ drop-icmpv6-info
@pytest.mark.parametrize("reply", [False, True])
def test_drop_icmpv6_info(make_nat, reply):
    n = make_nat(drop_icmpv6_info=True)
    r = n.send(echo6(55, reply=reply), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_ICMP6_FILTER")
    assert n.bib("icmp") == [] and n.gauges() == (0, 0)


def test_drop_icmpv6_info_off_translates(make_nat):
    n = make_nat(drop_icmpv6_info=False)
    expect_translated(n.send(echo6(55), T0), 4)


def test_drop_icmpv6_info_spares_ipv4_echo(make_nat):
    n = make_nat(drop_icmpv6_info=True)
    n.t.bib_add("icmp", CLIENT6, 55, POOL4, STATIC_PORT)
    q = expect_translated(n.send(echo4(STATIC_PORT), T0), 6)
    assert (q.type, q.icmp_id) == (128, 55)


def test_drop_icmpv6_info_spares_icmpv6_errors(make_nat):
    n = make_nat(drop_icmpv6_info=True)
    mask = expect_translated(n.send(udp6(), T0), 4).sport
    quoted = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"reply"), hlim=40)
    err = pl.ipv6(ROUTER6, PEER6, pl.icmp6_error(1, 4, quoted))
    p = expect_translated(n.send(err, T0 + 1), 4)
    assert p.proto == pl.ICMP and (p.type, p.code) == (3, 3)
    assert p.dst == PEER4 and p.inner.dport == mask


# ================================================= source-icmpv6-errors-better
@pytest.mark.parametrize("better", [True, False])
def test_source_icmpv6_errors_better(make_nat, better):
    n = make_nat(source_icmpv6_errors_better=better)
    mask = expect_translated(n.send(udp6(), T0), 4).sport
    quoted = pl.ipv4(POOL4, PEER4, pl.udp(mask, PEER_PORT, b"hello"), ttl=20)
    err = pl.ipv4(ROUTER4, POOL4, pl.icmp4_error(3, 1, quoted))
    p = expect_translated(n.send(err, T0 + 1), 6)
    assert p.proto == pl.ICMPV6 and (p.type, p.code) == (1, 0)
    assert p.dst == CLIENT6
    assert p.src == (pl.embed("64:ff9b::/96", ROUTER4) if better else PEER6)
    assert (p.inner.src, p.inner.sport, p.inner.dst, p.inner.dport) == (
        CLIENT6, C_PORT, PEER6, PEER_PORT)


# ============================================ handle-rst-during-fin-rcv (summary)
@pytest.mark.parametrize("handle", [False, True])
def test_handle_rst_during_fin_rcv(make_nat, handle):
    n = make_nat(handle_rst_during_fin_rcv=handle)
    expect_translated(n.send(tcp6(SYN), T0), 4)
    mask = n.mask("tcp")
    expect_translated(n.send(tcp4(SYN | ACK, mask), T0 + 1), 6)
    expect_translated(n.send(tcp6(FIN | ACK), T0 + 2), 4)
    assert n.sessions("tcp", T0 + 2)[0].state == "V6_FIN_RCV"
    expect_translated(n.send(tcp4(RST, mask), T0 + 3), 6)
    [s] = n.sessions("tcp", T0 + 3)
    assert s.state == "V6_FIN_RCV"
    assert s.expires_in_ms == (TRANS if handle else EST)
    n.expire(T0 + 3 + TRANS)
    assert (n.sessions("tcp", T0 + 3 + TRANS) == []) == handle
