"""Static BIB entries: bib_add / bib_remove (spec/behaviour.md §5.4, §3.2)."""
import pytest

from _nat64 import (C_PORT, CLIENT6, EST, PEER4, PEER4B, PEER6, PEER_PORT, POOL4, STATIC_PORT,
                    SYN4, UDP_TO, OutKind, Verdict, check_46, check_64, echo4, echo6,
                    expect_held, expect_translated, expect_verdict, make_nat, nat, pl, tables,
                    tcp4, tcp6, udp4, udp6)

_FIXTURES = (make_nat, nat, tables)

T0 = 20_000


@pytest.mark.parametrize("proto", ["tcp", "udp", "icmp"])
def test_bib_add_listed_and_counted(nat, proto):
    nat.t.bib_add(proto, CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert nat.bib(proto) == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, True)]
    others = {"tcp", "udp", "icmp"} - {proto}
    assert all(nat.bib(o) == [] for o in others)
    assert nat.gauges() == (1, 0)


@pytest.mark.parametrize("proto", ["tcp", "udp", "icmp"])
def test_static_bib_used_by_ipv6_traffic(nat, proto):
    nat.t.bib_add(proto, CLIENT6, C_PORT, POOL4, STATIC_PORT)
    if proto == "tcp":
        p = expect_translated(nat.send(tcp6(pl.SYN), T0), 4)
        check_64(p, STATIC_PORT)
    elif proto == "udp":
        p = expect_translated(nat.send(udp6(), T0), 4)
        check_64(p, STATIC_PORT, proto=pl.UDP)
    else:
        p = expect_translated(nat.send(echo6(C_PORT), T0), 4)
        assert (p.src, p.icmp_id) == (POOL4, STATIC_PORT)
    assert nat.bib(proto) == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, True)]
    assert nat.gauges() == (1, 1)


def test_bib_remove_removes_its_sessions(nat):
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_translated(nat.send(udp6(), T0), 4)
    expect_translated(nat.send(udp4(STATIC_PORT, src=PEER4B), T0), 6)
    expect_translated(nat.send(udp6(src="2001:db8::77"), T0), 4)   # another client
    assert nat.gauges() == (2, 3)
    nat.t.bib_remove("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert nat.bib_of("udp") is None
    [s] = nat.sessions("udp", T0)
    assert s.src6 == "2001:db8::77"
    assert nat.gauges() == (1, 1)
    # The mapping is gone: IPv4 traffic to it is no longer translated.
    r = nat.send(udp4(STATIC_PORT), T0 + 1)
    expect_verdict(r, Verdict.PASS, "JSTAT_BIB4_NOT_FOUND")


def test_bib_remove_tcp_sessions(nat):
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_translated(nat.send(tcp6(pl.SYN), T0), 4)
    expect_translated(nat.send(tcp4(pl.SYN | pl.ACK, STATIC_PORT), T0 + 1), 6)
    assert nat.sessions("tcp", T0 + 1)[0].state == "ESTABLISHED"
    nat.t.bib_remove("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert nat.sessions("tcp", T0 + 1) == [] and nat.bib("tcp") == []
    assert nat.gauges() == (0, 0)
    assert nat.expire(T0 + EST) == [], "a removed session sends no probe"


def test_bib_remove_with_stored_syn_sends_port_unreachable(make_nat):
    """§5.4: stored SO packets of removed sessions get an ICMPv4 Port Unreachable
    (either immediately from bib_remove's caller path or from the next expire())."""
    n = make_nat(address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_held(n.send(tcp4(pl.SYN, STATIC_PORT), T0), "JSTAT_TYPE2PKT")
    ret = n.t.bib_remove("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert n.sessions("tcp", T0) == []
    outs = [(int(k), pl.parse(bytes(b))) for k, b in (ret or [])]
    outs += n.expire(T0 + 1) + n.expire(T0 + SYN4)
    assert len(outs) == 1, outs
    kind, e = outs[0]
    assert kind == OutKind.ICMP4_ERROR and (e.type, e.code, e.dst) == (3, 3, PEER4)
    assert e.inner.flags == pl.SYN and e.inner.dport == STATIC_PORT


def test_bib_add_makes_dynamic_entry_static(nat):
    mask = expect_translated(nat.send(udp6(), T0), 4).sport
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, mask, False)]
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, mask)
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, mask, True)]
    assert nat.gauges() == (1, 1)
    nat.expire(T0 + UDP_TO)
    assert nat.sessions("udp", T0 + UDP_TO) == []
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, mask, True)]


def test_static_bib_accepts_ipv4_initiated_traffic(nat):
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    p = expect_translated(nat.send(tcp4(pl.SYN, STATIC_PORT), T0), 6)
    check_46(p)
    expect_translated(nat.send(tcp6(pl.SYN | pl.ACK), T0 + 1), 4)
    s = nat.session("tcp", T0 + 1, dst4=PEER4)
    assert s.state == "ESTABLISHED" and s.dst6 == PEER6 and s.dport4 == PEER_PORT


def test_static_icmp_bib_echo_from_ipv4(nat):
    nat.t.bib_add("icmp", CLIENT6, 7, POOL4, STATIC_PORT)
    q = expect_translated(nat.send(echo4(STATIC_PORT), T0), 6)
    assert (q.type, q.icmp_id, q.dst) == (128, 7, CLIENT6)


def test_bib_add_conflicts_are_rejected(nat):
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    with pytest.raises((OSError, ValueError)):
        nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT + 1)     # same IPv6 side
    with pytest.raises((OSError, ValueError)):
        nat.t.bib_add("udp", "2001:db8::99", 1, POOL4, STATIC_PORT)      # same IPv4 side
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, True)]
    # Same values again: nothing changes.
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert nat.gauges() == (1, 0)
    # Another protocol is another table.
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert nat.gauges() == (2, 0)


def test_bib_remove_absent_entry_fails(nat):
    with pytest.raises((OSError, ValueError, KeyError)):
        nat.t.bib_remove("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)


def test_static_icmp_bib_client_answers_ipv4_ping(nat):
    nat.t.bib_add("icmp", CLIENT6, 7, POOL4, STATIC_PORT)
    expect_translated(nat.send(echo4(STATIC_PORT, seq=3), T0), 6)
    p = expect_translated(nat.send(echo6(7, seq=3, reply=True), T0 + 1), 4)
    assert (p.type, p.icmp_id, p.icmp_seq, p.src, p.dst) == (0, STATIC_PORT, 3, POOL4, PEER4)
    assert len(nat.sessions("icmp", T0 + 1)) == 1
