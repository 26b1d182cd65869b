"""Hairpinning (spec/behaviour.md §13, §10 last line, §2)."""
from _nat64 import (C_PORT, C_PORT_B, CLIENT6, CLIENT6B, PEER6, POOL4, POOL4_AS6,
                    STATIC_PORT, Verdict, expect_translated, expect_verdict, make_nat, nat, pl,
                    tables, tcp6, udp6)

_FIXTURES = (make_nat, nat, tables)

T0 = 60_000


def test_udp_hairpin(nat):
    # Client B owns a BIB entry (it talked to a peer).
    mask_b = expect_translated(nat.send(udp6(src=CLIENT6B, sport=C_PORT_B), T0), 4).sport
    # Client A talks to B through B's IPv4 transport address.
    r = nat.send(udp6(dst=POOL4_AS6, dport=mask_b, payload=b"hi B", hlim=64), T0 + 10)
    p = expect_translated(r, 6)
    mask_a = nat.mask("udp")
    assert mask_a != mask_b
    assert p.version == 6 and p.proto == pl.UDP
    assert (p.src, p.sport) == (POOL4_AS6, mask_a)
    assert (p.dst, p.dport) == (CLIENT6B, C_PORT_B)
    assert p.payload == b"hi B"
    assert p.hlim == 63, "decremented once only"
    # A has a session towards B's mask; B one towards A's mask.
    sa = nat.session("udp", T0 + 10, src6=CLIENT6)
    assert (sa.dst6, sa.dport6, sa.src4, sa.sport4, sa.dst4, sa.dport4) == (
        POOL4_AS6, mask_b, POOL4, mask_a, POOL4, mask_b)
    sb = nat.session("udp", T0 + 10, src6=CLIENT6B, dst4=POOL4)
    assert (sb.dst6, sb.dport6, sb.sport4, sb.dport4) == (POOL4_AS6, mask_a, mask_b, mask_a)
    assert nat.gauges() == (2, 3)
    # B answers the same way.
    r = nat.send(udp6(src=CLIENT6B, sport=C_PORT_B, dst=POOL4_AS6, dport=mask_a,
                      payload=b"hi A", hlim=10), T0 + 20)
    q = expect_translated(r, 6)
    assert (q.src, q.sport, q.dst, q.dport) == (POOL4_AS6, mask_b, CLIENT6, C_PORT)
    assert q.payload == b"hi A" and q.hlim == 9
    assert nat.gauges() == (2, 3)


def test_tcp_hairpin(nat):
    nat.t.bib_add("tcp", CLIENT6B, C_PORT_B, POOL4, STATIC_PORT)
    r = nat.send(tcp6(pl.SYN, dst=POOL4_AS6, dport=STATIC_PORT, hlim=40), T0)
    p = expect_translated(r, 6)
    mask_a = nat.mask("tcp")
    assert (p.src, p.sport, p.dst, p.dport) == (POOL4_AS6, mask_a, CLIENT6B, C_PORT_B)
    assert p.flags == pl.SYN and p.hlim == 39
    sa = nat.session("tcp", T0, src6=CLIENT6)
    sb = nat.session("tcp", T0, src6=CLIENT6B)
    assert sa.state == "V6_INIT" and sb.state == "V4_INIT"
    # B's SYN/ACK goes back to A the same way; both sides become established.
    r = nat.send(tcp6(pl.SYN | pl.ACK, src=CLIENT6B, sport=C_PORT_B, dst=POOL4_AS6,
                      dport=mask_a), T0 + 5)
    q = expect_translated(r, 6)
    assert (q.src, q.sport, q.dst, q.dport) == (POOL4_AS6, STATIC_PORT, CLIENT6, C_PORT)
    assert nat.session("tcp", T0 + 5, src6=CLIENT6).state == "ESTABLISHED"
    assert nat.session("tcp", T0 + 5, src6=CLIENT6B).state == "ESTABLISHED"


def test_hairpin_checksum_valid(nat):
    mask_b = expect_translated(nat.send(udp6(src=CLIENT6B, sport=C_PORT_B), T0), 4).sport
    r = nat.send(udp6(dst=POOL4_AS6, dport=mask_b, payload=b"x" * 101), T0 + 1)
    p = expect_translated(r, 6)
    assert pl.l4_csum_ok(p)


def test_ipv6_source_inside_pool6_is_a_loop(nat):
    r = nat.send(udp6(src=PEER6, dst=POOL4_AS6, dport=100), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_HAIRPIN_LOOP")
    assert nat.gauges() == (0, 0)


def test_icmp_error_about_hairpinned_packet_is_hairpinned(nat):
    """§13 compares the outgoing IPv4 *transport* address (Jool's outgoing tuple) with
    pool4. For an ICMP error that tuple comes from the quoted packet: an ICMPv6 error
    from client A about a packet client B sent through the hairpin has, once
    translated, the tuple destination = B's mask, which is in pool4; so it goes
    through the 4->6 path again and reaches B as an ICMPv6 error instead of leaving
    as an ICMPv4 packet addressed to the NAT64's own pool4 address."""
    mask_a = expect_translated(nat.send(udp6(), T0), 4).sport
    r = nat.send(udp6(src=CLIENT6B, sport=C_PORT_B, dst=POOL4_AS6, dport=mask_a,
                      payload=b"to A"), T0 + 1)
    to_a = expect_translated(r, 6)
    err = pl.ipv6(CLIENT6, POOL4_AS6, pl.icmp6_error(1, 4, to_a.raw), hlim=50)
    p = expect_translated(nat.send(err, T0 + 2), 6)
    assert p.proto == pl.ICMPV6 and (p.type, p.code) == (1, 4)
    assert (p.src, p.dst) == (POOL4_AS6, CLIENT6B)
    assert p.hlim == 49
    i = p.inner
    assert (i.src, i.sport, i.dst, i.dport) == (CLIENT6B, C_PORT_B, POOL4_AS6, mask_a)
    assert i.payload == b"to A"
