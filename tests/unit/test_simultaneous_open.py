"""Simultaneous open / stored IPv4 SYNs (spec/behaviour.md §9, §7 V4_INIT rows,
spec/stats.md #35-#38)."""
import pytest

from _nat64 import (C_PORT, CLIENT6, EST, OWN4, PEER4, PEER4B, PEER6, PEER6B, PEER_PORT,
                    POOL4, STATIC_PORT, SYN4, OutKind, Verdict, check_46, check_64,
                    expect_held, expect_icmp4_error, expect_translated, expect_verdict,
                    make_nat, nat, pl, tables, tcp4, tcp6)

_FIXTURES = (make_nat, nat, tables)

SYN, ACK = pl.SYN, pl.ACK
T0 = 40_000
PEER4C = "198.51.100.8"


def assert_port_unreachable(outs, syn, to=PEER4):
    assert len(outs) == 1, outs
    kind, e = outs[0]
    assert kind == OutKind.ICMP4_ERROR, kind
    assert e.version == 4 and e.proto == pl.ICMP and (e.type, e.code) == (3, 3), e
    assert e.dst == to and e.src in (OWN4, POOL4), e
    assert pl.valid(e)
    assert e.quoted == syn
    return e


# ======================================================================= type 1
def test_type1_stored(nat):
    r = nat.send(tcp4(SYN, STATIC_PORT), T0)
    expect_held(r, "JSTAT_TYPE1PKT")
    assert "JSTAT_TYPE2PKT" not in r.delta
    assert nat.bib("tcp") == [] and nat.sessions("tcp", T0) == []
    assert nat.counter("JSTAT_TYPE1PKT") == 1


def test_type1_duplicate_dropped_so_exists(nat):
    syn = tcp4(SYN, STATIC_PORT)
    expect_held(nat.send(syn, T0), "JSTAT_TYPE1PKT")
    r = nat.send(tcp4(SYN, STATIC_PORT, seq=999), T0 + 3000)
    expect_verdict(r, Verdict.DROP, "JSTAT_SO_EXISTS")
    assert nat.counter("JSTAT_TYPE1PKT") == 1
    # The timer was not reset by the duplicate; the first SYN is the one quoted.
    assert nat.expire(T0 + SYN4 - 1) == []
    assert_port_unreachable(nat.expire(T0 + SYN4), syn)
    assert nat.expire(T0 + 3000 + SYN4) == []


def test_type1_timeout_sends_port_unreachable(nat):
    syn = tcp4(SYN, STATIC_PORT, seq=31337, payload=b"")
    expect_held(nat.send(syn, T0), "JSTAT_TYPE1PKT")
    assert nat.expire(T0 + 2000) == []
    assert nat.expire(T0 + SYN4 - 1) == []
    before = nat.counter("JSTAT_ICMP4ERR_SUCCESS")
    e = assert_port_unreachable(nat.expire(T0 + SYN4), syn)
    assert e.inner.seq == 31337
    assert nat.counter("JSTAT_ICMP4ERR_SUCCESS") == before, "stats.md notes: not counted"
    assert nat.expire(T0 + 60_000) == [], "sent once"
    assert nat.counter("JSTAT_TYPE1PKT") == 1, "never decremented"
    # Once gone, the same SYN may be stored again.
    expect_held(nat.send(syn, T0 + 60_000), "JSTAT_TYPE1PKT")


def test_type1_released_by_matching_ipv6_syn(nat):
    """The IPv6 SYN aimed at the stored SYN's source gets exactly the stored SYN's
    destination as its mask and the session ends ESTABLISHED."""
    expect_held(nat.send(tcp4(SYN, STATIC_PORT, seq=777), T0), "JSTAT_TYPE1PKT")
    r = nat.send(tcp6(SYN, seq=888), T0 + 1000)
    p = expect_translated(r, 4)
    check_64(p, STATIC_PORT)
    assert p.flags == SYN and p.seq == 888
    assert nat.bib("tcp") == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, False)]
    [s] = nat.sessions("tcp", T0 + 1000)
    assert s.state == "ESTABLISHED" and s.expires_in_ms == EST, s
    assert (s.dst6, s.dport6, s.dst4, s.dport4) == (PEER6, PEER_PORT, PEER4, PEER_PORT)
    # The stored SYN is discarded silently.
    assert nat.expire(T0 + SYN4) == []
    assert nat.expire(T0 + 20_000) == []
    # And the connection works both ways.
    expect_translated(nat.send(tcp4(ACK, STATIC_PORT, payload=b"x"), T0 + 2000), 6)


def test_type1_not_released_by_other_destination(nat):
    syn = tcp4(SYN, STATIC_PORT)
    expect_held(nat.send(syn, T0), "JSTAT_TYPE1PKT")
    p = expect_translated(nat.send(tcp6(SYN, dst=PEER6B), T0 + 1000), 4)
    assert p.dst == PEER4B
    s = nat.sessions("tcp", T0 + 1000)[0]
    assert s.state == "V6_INIT"
    assert_port_unreachable(nat.expire(T0 + SYN4), syn)


def test_type1_not_released_by_other_peer_port(nat):
    syn = tcp4(SYN, STATIC_PORT)
    expect_held(nat.send(syn, T0), "JSTAT_TYPE1PKT")
    p = expect_translated(nat.send(tcp6(SYN, dport=PEER_PORT + 1), T0 + 1000), 4)
    assert nat.sessions("tcp", T0 + 1000)[0].state == "V6_INIT"
    assert_port_unreachable(nat.expire(T0 + SYN4), syn)
    del p


def test_type1_discarded_by_static_bib_add(nat):
    expect_held(nat.send(tcp4(SYN, STATIC_PORT), T0), "JSTAT_TYPE1PKT")
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    assert nat.expire(T0 + SYN4) == []
    assert nat.expire(T0 + 60_000) == []


# ======================================================================= limit
def test_limit_reached_port_unreachable_immediately(make_nat):
    n = make_nat(maximum_simultaneous_opens=2)
    expect_held(n.send(tcp4(SYN, 100), T0), "JSTAT_TYPE1PKT")
    expect_held(n.send(tcp4(SYN, 101, src=PEER4B), T0 + 1), "JSTAT_TYPE1PKT")
    third = tcp4(SYN, 102, src=PEER4C)
    r = n.send(third, T0 + 2)
    e = expect_icmp4_error(r, "JSTAT_SO_FULL", 3, 3, PEER4C)
    assert e.quoted == third
    assert "JSTAT_TYPE1PKT" not in r.delta
    assert r.delta.get("JSTAT_ICMP4ERR_SUCCESS") == 1
    assert n.counter("JSTAT_TYPE1PKT") == 2
    # The two stored ones time out; the rejected one is not sent again.
    outs = n.expire(T0 + 1 + SYN4)
    assert sorted(e.dst for _, e in outs) == sorted([PEER4, PEER4B])
    # Room again.
    expect_held(n.send(third, T0 + 10_000), "JSTAT_TYPE1PKT")


def test_limit_zero_rejects_everything(make_nat):
    n = make_nat(maximum_simultaneous_opens=0)
    expect_icmp4_error(n.send(tcp4(SYN, 100), T0), "JSTAT_SO_FULL", 3, 3, PEER4)
    assert n.expire(T0 + SYN4) == []


def test_limit_counts_type1_and_type2(make_nat):
    n = make_nat(maximum_simultaneous_opens=1, address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_held(n.send(tcp4(SYN, STATIC_PORT), T0), "JSTAT_TYPE2PKT")
    r = n.send(tcp4(SYN, 100, src=PEER4B), T0 + 1)
    expect_icmp4_error(r, "JSTAT_SO_FULL", 3, 3, PEER4B)
    assert "JSTAT_TYPE1PKT" not in r.delta


def test_limit_type2_after_type1(make_nat):
    n = make_nat(maximum_simultaneous_opens=1, address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_held(n.send(tcp4(SYN, 100, src=PEER4B), T0), "JSTAT_TYPE1PKT")
    r = n.send(tcp4(SYN, STATIC_PORT), T0 + 1)
    expect_icmp4_error(r, "JSTAT_SO_FULL", 3, 3, PEER4)
    assert "JSTAT_TYPE2PKT" not in r.delta
    assert n.sessions("tcp", T0 + 1) == [], "no V4_INIT session for a rejected SYN"


def test_released_syn_frees_its_slot(make_nat):
    n = make_nat(maximum_simultaneous_opens=1)
    expect_held(n.send(tcp4(SYN, STATIC_PORT), T0), "JSTAT_TYPE1PKT")
    expect_translated(n.send(tcp6(SYN), T0 + 100), 4)
    expect_held(n.send(tcp4(SYN, 100, src=PEER4B), T0 + 200), "JSTAT_TYPE1PKT")


# ======================================================================= type 2
def test_type2_with_adf(make_nat):
    n = make_nat(address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = n.send(tcp4(SYN, STATIC_PORT), T0)
    expect_held(r, "JSTAT_TYPE2PKT")
    [s] = n.sessions("tcp", T0)
    assert s.state == "V4_INIT" and s.expires_in_ms == SYN4
    dup = n.send(tcp4(SYN, STATIC_PORT), T0 + 1000)
    expect_verdict(dup, Verdict.DROP, "JSTAT_SO_EXISTS")
    p = expect_translated(n.send(tcp6(SYN | ACK), T0 + 2000), 4)
    check_64(p, STATIC_PORT)
    [s] = n.sessions("tcp", T0 + 2000)
    assert s.state == "ESTABLISHED" and s.expires_in_ms == EST
    assert n.expire(T0 + SYN4) == []
    # Later IPv4 packets flow normally.
    check_46(expect_translated(n.send(tcp4(ACK, STATIC_PORT, payload=b"y"), T0 + 3000), 6))


def test_released_type2_frees_its_slot(make_nat):
    n = make_nat(maximum_simultaneous_opens=1, address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_held(n.send(tcp4(SYN, STATIC_PORT), T0), "JSTAT_TYPE2PKT")
    expect_translated(n.send(tcp6(SYN), T0 + 100), 4)
    expect_held(n.send(tcp4(SYN, 100, src=PEER4B), T0 + 200), "JSTAT_TYPE1PKT")


@pytest.mark.parametrize("how", ["timeout", "bib_remove"])
def test_type2_slot_freed_when_session_goes(make_nat, how):
    n = make_nat(maximum_simultaneous_opens=1, address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    expect_held(n.send(tcp4(SYN, STATIC_PORT), T0), "JSTAT_TYPE2PKT")
    if how == "timeout":
        assert len(n.expire(T0 + SYN4)) == 1
    else:
        assert len(n.t.bib_remove("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)) == 1
    expect_held(n.send(tcp4(SYN, 100, src=PEER4B), T0 + SYN4 + 1), "JSTAT_TYPE1PKT")
    assert n.expire(T0 + SYN4 + 1) == [], "the first SYN is answered once only"


def test_type1_released_by_ipv6_non_syn(nat):
    """§9: any IPv6 TCP packet (not only a SYN) from a src6 without BIB whose
    destination is a stored key takes the stored SYN's IPv4 transport address; the
    session starts V4_INIT on the SYN4 timer and the state machine keeps it there
    (IPv6 non-SYN in V4_INIT = keep); the stored SYN is discarded silently."""
    expect_held(nat.send(tcp4(SYN, STATIC_PORT), T0), "JSTAT_TYPE1PKT")
    r = nat.send(tcp6(ACK, payload=b"x"), T0 + 1000)
    p = expect_translated(r, 4)
    check_64(p, STATIC_PORT)
    assert p.flags == ACK
    assert nat.bib("tcp") == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, False)]
    [s] = nat.sessions("tcp", T0 + 1000)
    assert s.state == "V4_INIT" and s.expires_in_ms == SYN4, s
    assert nat.expire(T0 + SYN4) == [], "the stored SYN was discarded"
    assert nat.expire(T0 + 1000 + SYN4) == [], "the session holds no SYN: no ICMP"
    assert nat.sessions("tcp", T0 + 1000 + SYN4) == [] and nat.bib("tcp") == []


def test_type1_not_released_when_mark_set_lacks_the_address(nat):
    """§9: the IPv6 packet's mask set (chosen by its mark) must contain the stored
    SYN's destination transport address."""
    nat.t.pool4_add("tcp", POOL4 + "/32", 4000, 4100, mark=7)
    syn = tcp4(SYN, STATIC_PORT)
    expect_held(nat.send(syn, T0), "JSTAT_TYPE1PKT")
    p = expect_translated(nat.send(tcp6(SYN), T0 + 1000, mark=7), 4)
    assert 4000 <= p.sport <= 4100
    assert nat.sessions("tcp", T0 + 1000)[0].state == "V6_INIT"
    assert_port_unreachable(nat.expire(T0 + SYN4), syn)


def test_type1_released_through_the_mark_set_that_has_the_address(nat):
    nat.t.pool4_add("tcp", POOL4 + "/32", 4000, 4100, mark=7)
    expect_held(nat.send(tcp4(SYN, 4050), T0), "JSTAT_TYPE1PKT")
    p = expect_translated(nat.send(tcp6(SYN), T0 + 1000, mark=7), 4)
    check_64(p, 4050)
    assert nat.sessions("tcp", T0 + 1000)[0].state == "ESTABLISHED"
    assert nat.expire(T0 + SYN4) == []


def test_type1_key_is_the_remote_transport_address(nat):
    """§9: stored type 1 SYNs are keyed by the peer's (pool6-embedded) transport
    address; a second SYN from the same peer address+port is a duplicate even when
    it targets another pool4 port, while another peer port is a new key."""
    first = tcp4(SYN, STATIC_PORT)
    expect_held(nat.send(first, T0), "JSTAT_TYPE1PKT")
    r = nat.send(tcp4(SYN, STATIC_PORT + 1), T0 + 1)
    expect_verdict(r, Verdict.DROP, "JSTAT_SO_EXISTS")
    expect_held(nat.send(tcp4(SYN, STATIC_PORT, sport=PEER_PORT + 1), T0 + 2),
                "JSTAT_TYPE1PKT")
    outs = nat.expire(T0 + 2 + SYN4)
    assert sorted(e.inner.sport for _, e in outs) == [PEER_PORT, PEER_PORT + 1]


def test_type2_answered_when_pool4_removal_takes_its_bib(make_nat):
    """§3.2 + §5.4: a non-quick pool4 removal deletes the BIB entries of the range with
    their sessions; a SYN such a session held gets its Port Unreachable and frees its
    slot."""
    n = make_nat(maximum_simultaneous_opens=1, address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    syn = tcp4(SYN, STATIC_PORT)
    expect_held(n.send(syn, T0), "JSTAT_TYPE2PKT")
    ret = n.t.pool4_remove("tcp", POOL4 + "/32", STATIC_PORT, STATIC_PORT, quick=False)
    outs = [(int(k), pl.parse(bytes(b))) for k, b in (ret or [])]
    outs += n.expire(T0 + 1) + n.expire(T0 + SYN4)
    assert_port_unreachable(outs, syn)
    assert n.bib("tcp") == [] and n.sessions("tcp", T0) == []
    expect_held(n.send(tcp4(SYN, 100, src=PEER4B), T0 + SYN4 + 1), "JSTAT_TYPE1PKT")
