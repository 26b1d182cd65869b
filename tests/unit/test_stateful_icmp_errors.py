"""ICMP errors through the stateful path (spec/behaviour.md §5.5, §8.4, stats.md #30):
found by the BIB entry of their inner packet, never filtered, never creating or
refreshing sessions."""
from _nat64 import (C_PORT, CLIENT6, PEER4, PEER4B, PEER6, PEER6B, PEER_PORT, POOL4,
                    ROUTER4, ROUTER6, STATIC_PORT, UDP_TO, Verdict, expect_translated,
                    expect_verdict, make_nat, nat, pl, tables, tcp6, udp6)

_FIXTURES = (make_nat, nat, tables)

T0 = 70_000
ROUTER4_AS6 = pl.embed("64:ff9b::/96", ROUTER4)


def err4(quoted, type_=3, code=1, src=ROUTER4, **kw):
    """ICMPv4 error travelling towards the NAT64's pool4 address."""
    return pl.ipv4(src, POOL4, pl.icmp4_error(type_, code, quoted, **kw))


def err6(quoted, type_=1, code=4, src=ROUTER6, dst=PEER6, **kw):
    """ICMPv6 error travelling towards a pool6 address."""
    return pl.ipv6(src, dst, pl.icmp6_error(type_, code, quoted, **kw))


def client_udp(nat, now=T0):
    return expect_translated(nat.send(udp6(), now), 4).sport


# ======================================================================= 4 -> 6
def test_icmp4_error_reaches_client(nat):
    mask = client_udp(nat)
    quoted = pl.ipv4(POOL4, PEER4, pl.udp(mask, PEER_PORT, b"hello"), ttl=3)
    p = expect_translated(nat.send(err4(quoted, 3, 3, src=PEER4), T0 + 1), 6)
    assert p.proto == pl.ICMPV6 and (p.type, p.code) == (1, 4)
    assert (p.src, p.dst) == (PEER6, CLIENT6)
    i = p.inner
    assert (i.src, i.sport, i.dst, i.dport) == (CLIENT6, C_PORT, PEER6, PEER_PORT)
    assert i.payload == b"hello"
    assert pl.l4_csum_ok(p)


def test_icmp4_error_about_tcp(nat):
    expect_translated(nat.send(tcp6(pl.SYN), T0), 4)
    mask = nat.mask("tcp")
    quoted = pl.ipv4(POOL4, PEER4, pl.tcp(mask, PEER_PORT, seq=100, flags=pl.SYN), ttl=1)
    p = expect_translated(nat.send(err4(quoted, 11, 0), T0 + 1), 6)
    assert (p.type, p.code) == (3, 0)
    assert (p.src, p.dst) == (ROUTER4_AS6, CLIENT6)
    assert (p.inner.src, p.inner.sport, p.inner.dport) == (CLIENT6, C_PORT, PEER_PORT)
    assert p.inner.seq == 100


def test_icmp4_error_about_echo(nat):
    mask = expect_translated(nat.send(pl.ipv6(CLIENT6, PEER6, pl.icmp6_echo(42, 1)), T0),
                             4).icmp_id
    quoted = pl.ipv4(POOL4, PEER4, pl.icmp4_echo(mask, 1))
    p = expect_translated(nat.send(err4(quoted, 3, 1), T0 + 1), 6)
    assert p.inner.proto == pl.ICMPV6 and p.inner.icmp_id == 42
    assert p.inner.src == CLIENT6 and p.dst == CLIENT6


def test_icmp4_error_without_bib_passes(nat):
    quoted = pl.ipv4(POOL4, PEER4, pl.udp(2500, PEER_PORT, b"hello"))
    r = nat.send(err4(quoted), T0)
    expect_verdict(r, Verdict.PASS, "JSTAT_SESSION_NOT_FOUND")
    assert nat.gauges() == (0, 0)


def test_icmp4_error_without_bib_but_other_bib_passes(nat):
    mask = client_udp(nat)
    other = 2500 if mask != 2500 else 2501
    quoted = pl.ipv4(POOL4, PEER4, pl.udp(other, PEER_PORT, b"hello"))
    r = nat.send(err4(quoted), T0 + 1)
    expect_verdict(r, Verdict.PASS, "JSTAT_SESSION_NOT_FOUND")


def test_icmp4_error_does_not_refresh(nat):
    mask = client_udp(nat)
    quoted = pl.ipv4(POOL4, PEER4, pl.udp(mask, PEER_PORT, b"hello"))
    t1 = T0 + 100_000
    expect_translated(nat.send(err4(quoted), t1), 6)
    [s] = nat.sessions("udp", t1)
    assert s.expires_in_ms == UDP_TO - 100_000
    nat.expire(T0 + UDP_TO)
    assert nat.sessions("udp", T0 + UDP_TO) == []


def test_icmp4_error_does_not_create_session_nor_get_filtered(make_nat):
    """An error quoting a packet to a peer without session: still translated (BIB
    only), even with ADF on, and no session appears."""
    n = make_nat(address_dependent_filtering=True)
    mask = client_udp(n)
    quoted = pl.ipv4(POOL4, PEER4B, pl.udp(mask, 53, b"q"))
    r = n.send(err4(quoted, 3, 3, src=PEER4B), T0 + 1)
    p = expect_translated(r, 6)
    assert (p.src, p.dst) == (PEER6B, CLIENT6)
    assert (p.inner.dst, p.inner.dport) == (PEER6B, 53)
    assert "JSTAT_ADF" not in r.delta
    assert len(n.sessions("udp", T0 + 1)) == 1
    assert n.gauges() == (1, 1)


def test_icmp4_error_does_not_advance_tcp_state(nat):
    expect_translated(nat.send(tcp6(pl.SYN), T0), 4)
    mask = nat.mask("tcp")
    # An error quoting a SYN/ACK-like or RST segment must not move the state machine.
    quoted = pl.ipv4(POOL4, PEER4, pl.tcp(mask, PEER_PORT, flags=pl.RST))
    expect_translated(nat.send(err4(quoted, 3, 1), T0 + 500), 6)
    [s] = nat.sessions("tcp", T0 + 500)
    assert s.state == "V6_INIT"


# ======================================================================= 6 -> 4
def test_icmp6_error_reaches_peer(nat):
    mask = client_udp(nat)
    quoted = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"reply"), hlim=40)
    p = expect_translated(nat.send(err6(quoted), T0 + 1), 4)
    assert p.proto == pl.ICMP and (p.type, p.code) == (3, 3)
    assert (p.src, p.dst) == (POOL4, PEER4)
    i = p.inner
    assert (i.src, i.sport, i.dst, i.dport) == (PEER4, PEER_PORT, POOL4, mask)
    assert i.payload == b"reply"


def test_icmp6_error_without_bib_passes(nat):
    quoted = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"reply"))
    r = nat.send(err6(quoted), T0)
    expect_verdict(r, Verdict.PASS, "JSTAT_SESSION_NOT_FOUND")
    assert nat.gauges() == (0, 0)


def test_icmp6_error_does_not_create_or_refresh(nat):
    client_udp(nat)
    t1 = T0 + 50_000
    # Quoting a packet from a peer the client never talked to.
    quoted = pl.ipv6(PEER6B, CLIENT6, pl.udp(53, C_PORT, b"r"))
    p = expect_translated(nat.send(err6(quoted, dst=PEER6B), t1), 4)
    assert p.dst == PEER4B
    [s] = nat.sessions("udp", t1)
    assert s.dst4 == PEER4 and s.expires_in_ms == UDP_TO - 50_000


def test_icmp6_error_static_bib_no_session(nat):
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    quoted = pl.ipv6(PEER6, CLIENT6, pl.tcp(PEER_PORT, C_PORT, flags=pl.SYN))
    p = expect_translated(nat.send(err6(quoted, 1, 4), T0), 4)
    assert p.inner.proto == pl.TCP and (p.inner.dst, p.inner.dport) == (POOL4, STATIC_PORT)
    assert nat.sessions("tcp", T0) == []


def test_icmp6_error_not_stopped_by_drop_icmpv6_info(make_nat):
    n = make_nat(drop_icmpv6_info=True)
    client_udp(n)
    quoted = pl.ipv6(PEER6, CLIENT6, pl.udp(PEER_PORT, C_PORT, b"reply"))
    expect_translated(n.send(err6(quoted), T0 + 1), 4)


def test_icmp4_error_quoting_port_outside_pool4_passes(nat):
    """The error's IPv4 "destination transport address" is the quoted packet's
    source; outside pool4 it is untranslatable like any packet (spec §1)."""
    quoted = pl.ipv4(POOL4, PEER4, pl.udp(4000, PEER_PORT, b"hello"))
    r = nat.send(err4(quoted), T0)
    expect_verdict(r, Verdict.PASS, "JSTAT_POOL4_MISMATCH")


def test_icmp6_error_about_echo(nat):
    mask = expect_translated(nat.send(pl.ipv6(CLIENT6, PEER6, pl.icmp6_echo(42, 1)), T0),
                             4).icmp_id
    quoted = pl.ipv6(PEER6, CLIENT6, pl.icmp6_echo(42, 1, reply=True))
    p = expect_translated(nat.send(err6(quoted, 1, 4), T0 + 1), 4)
    assert (p.type, p.code, p.src, p.dst) == (3, 3, POOL4, PEER4)
    i = p.inner
    assert i.proto == pl.ICMP and (i.type, i.icmp_id) == (0, mask)
    assert (i.src, i.dst) == (PEER4, POOL4)


# ============================================ errors generated after F&U (§1 order)
def test_hop_limit_exceeded_after_filtering_and_updating(nat):
    """§1 processing order: filtering & updating runs before the translation, so an
    IPv6 packet with hop limit 1 still creates its BIB entry and session; then the
    translation answers with ICMPv6 Time Exceeded (§10)."""
    r = nat.send(udp6(hlim=1), T0)
    assert r.verdict == Verdict.DROP_ICMP and r.delta.get("JSTAT64_TTL") == 1, r
    [e] = r.pkts
    assert e.version == 6 and (e.type, e.code, e.dst) == (3, 0, CLIENT6)
    assert nat.gauges() == (1, 1)


def test_ttl_exceeded_after_filtering_and_updating(nat):
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = nat.send(pl.ipv4(PEER4B, POOL4, pl.udp(PEER_PORT, STATIC_PORT, b"x"), ttl=1), T0)
    assert r.verdict == Verdict.DROP_ICMP and r.delta.get("JSTAT46_TTL") == 1, r
    [e] = r.pkts
    assert e.version == 4 and (e.type, e.code, e.dst) == (11, 0, PEER4B)
    assert nat.session("udp", T0, dst4=PEER4B) is not None
