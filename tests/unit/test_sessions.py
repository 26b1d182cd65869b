"""UDP and ICMP query sessions (spec/behaviour.md §4, §5.1-§5.3, §14), the
BIB_ENTRIES / SESSIONS gauges (spec/stats.md #4, #5) and session_events()."""
import gc

import pytest

from _nat64 import (C_PORT, C_PORT_B, CLIENT6, CLIENT6B, ICMP_TO, PEER4, PEER4B, PEER6,
                    PEER6B, PEER_PORT, POOL4, POOL4_MAX, POOL4_MIN, STATIC_PORT, TRANS, UDP_TO,
                    Nat64, Tables, Verdict, check_46, check_64, echo4, echo6, event_kind, expect_translated,
                    expect_verdict, ip, make_nat, nat, pl, tables, tcp6, udp4, udp6)

_FIXTURES = (make_nat, nat, tables)

T0 = 50_000


# ===================================================================== UDP
def test_udp_session_created_from_ipv6(nat):
    r = nat.send(udp6(payload=b"query", hlim=30), T0)
    p = expect_translated(r, 4)
    mask = p.sport
    assert POOL4_MIN <= mask <= POOL4_MAX
    check_64(p, mask, proto=pl.UDP)
    assert p.payload == b"query" and p.ttl == 29
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, mask, False)]
    [s] = nat.sessions("udp", T0)
    assert (s.src6, s.sport6, s.dst6, s.dport6) == (CLIENT6, C_PORT, PEER6, PEER_PORT)
    assert (s.src4, s.sport4, s.dst4, s.dport4) == (POOL4, mask, PEER4, PEER_PORT)
    assert s.expires_in_ms == UDP_TO
    assert nat.sessions("tcp", T0) == [] and nat.sessions("icmp", T0) == []
    assert nat.gauges() == (1, 1)


def test_udp_reply_translated_to_client(nat):
    mask = expect_translated(nat.send(udp6(), T0), 4).sport
    r = nat.send(udp4(mask, payload=b"answer", ttl=50), T0 + 10)
    p = expect_translated(r, 6)
    check_46(p, proto=pl.UDP)
    assert p.payload == b"answer" and p.hlim == 49
    assert len(nat.sessions("udp", T0 + 10)) == 1


def test_udp_expires_in_counts_down(nat):
    nat.send(udp6(), T0)
    [s] = nat.sessions("udp", T0 + 12_345)
    assert s.expires_in_ms == UDP_TO - 12_345


@pytest.mark.parametrize("side", [6, 4])
def test_udp_refresh(nat, side):
    mask = expect_translated(nat.send(udp6(), T0), 4).sport
    t1 = T0 + 200_000
    pkt = udp6() if side == 6 else udp4(mask)
    expect_translated(nat.send(pkt, t1))
    [s] = nat.sessions("udp", t1)
    assert s.expires_in_ms == UDP_TO
    # The sweep uses the refreshed time: still alive at the old expiry.
    nat.expire(T0 + UDP_TO)
    assert len(nat.sessions("udp", T0 + UDP_TO)) == 1
    nat.expire(t1 + UDP_TO - 1)
    assert len(nat.sessions("udp", t1 + UDP_TO - 1)) == 1
    assert nat.expire(t1 + UDP_TO) == []
    assert nat.sessions("udp", t1 + UDP_TO) == []


def test_udp_expiry_removes_dynamic_bib_with_last_session(nat):
    expect_translated(nat.send(udp6(), T0), 4)
    mask = nat.mask("udp")
    expect_translated(nat.send(udp6(dst=PEER6B, dport=53), T0 + 1000), 4)
    assert nat.mask("udp") == mask
    assert nat.gauges() == (1, 2)
    nat.expire(T0 + UDP_TO)
    [s] = nat.sessions("udp", T0 + UDP_TO)
    assert (s.dst4, s.dport4) == (PEER4B, 53)
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, mask, False)]
    assert nat.gauges() == (1, 1)
    nat.expire(T0 + 1000 + UDP_TO)
    assert nat.sessions("udp", T0 + 1000 + UDP_TO) == []
    assert nat.bib("udp") == []
    assert nat.gauges() == (0, 0)


def test_udp_static_bib_kept_after_session_expiry(nat):
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    p = expect_translated(nat.send(udp6(), T0), 4)
    check_64(p, STATIC_PORT, proto=pl.UDP)
    assert nat.gauges() == (1, 1)
    nat.expire(T0 + UDP_TO)
    assert nat.sessions("udp", T0 + UDP_TO) == []
    assert nat.bib("udp") == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, True)]
    assert nat.gauges() == (1, 0)


def test_udp_ipv4_without_bib_passes(nat):
    r = nat.send(udp4(STATIC_PORT), T0)
    expect_verdict(r, Verdict.PASS, "JSTAT_BIB4_NOT_FOUND")
    assert "JSTAT_ICMP4ERR_SUCCESS" not in r.delta
    assert nat.bib("udp") == [] and nat.sessions("udp", T0) == []


@pytest.mark.parametrize("dst,dport", [(POOL4, POOL4_MAX + 1), ("192.0.2.3", 100)])
def test_udp_ipv4_outside_pool4_passes(nat, dst, dport):
    r = nat.send(udp4(dport, dst=dst), T0)
    expect_verdict(r, Verdict.PASS, "JSTAT_POOL4_MISMATCH")


def test_udp_ipv4_with_bib_no_session_creates_session(nat):
    """ADF off: endpoint-independent filtering (full cone)."""
    nat.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = nat.send(udp4(STATIC_PORT, src=PEER4B, sport=4444), T0)
    p = expect_translated(r, 6)
    check_46(p, proto=pl.UDP, src=PEER6B, sport=4444)
    [s] = nat.sessions("udp", T0)
    assert (s.src6, s.sport6, s.dst6, s.dport6) == (CLIENT6, C_PORT, PEER6B, 4444)
    assert (s.src4, s.sport4, s.dst4, s.dport4) == (POOL4, STATIC_PORT, PEER4B, 4444)
    assert s.expires_in_ms == UDP_TO


def test_udp_endpoint_independent_mapping(nat):
    a = expect_translated(nat.send(udp6(), T0), 4)
    b = expect_translated(nat.send(udp6(dst=PEER6B, dport=53), T0 + 1), 4)
    assert (a.src, a.sport) == (b.src, b.sport)
    assert (b.dst, b.dport) == (PEER4B, 53)
    assert len(nat.bib("udp")) == 1 and len(nat.sessions("udp", T0 + 1)) == 2


def test_udp_endpoint_independent_filtering(nat):
    mask = expect_translated(nat.send(udp6(), T0), 4).sport
    r = nat.send(udp4(mask, src=PEER4B, sport=7777), T0 + 5)
    p = expect_translated(r, 6)
    check_46(p, proto=pl.UDP, src=PEER6B, sport=7777)
    assert len(nat.sessions("udp", T0 + 5)) == 2


def test_udp_different_clients_different_masks(nat):
    a = expect_translated(nat.send(udp6(), T0), 4)
    b = expect_translated(nat.send(udp6(src=CLIENT6B, sport=C_PORT_B), T0), 4)
    c = expect_translated(nat.send(udp6(sport=C_PORT + 1), T0), 4)
    assert len({a.sport, b.sport, c.sport}) == 3
    assert len(nat.bib("udp")) == 3
    for p, (a6, p6) in ((b, (CLIENT6B, C_PORT_B)), (c, (CLIENT6, C_PORT + 1))):
        r = nat.send(udp4(p.sport), T0 + 1)
        q = expect_translated(r, 6)
        assert (q.dst, q.dport) == (a6, p6)


def test_protocols_have_separate_tables(nat):
    expect_translated(nat.send(udp6(), T0), 4)
    assert nat.bib("tcp") == [] and nat.bib("icmp") == []
    mask = nat.mask("udp")
    # The UDP mask is not a TCP BIB entry: IPv4 TCP to it finds nothing.
    r = nat.send(pl.ipv4(PEER4, POOL4, pl.tcp(PEER_PORT, mask, flags=pl.ACK)), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_SYN4_EXPECTED")


# ===================================================================== ICMP
def test_icmp_echo_session(nat):
    r = nat.send(echo6(1234, seq=9, payload=b"ping!"), T0)
    p = expect_translated(r, 4)
    mask = p.icmp_id
    assert POOL4_MIN <= mask <= POOL4_MAX
    assert p.proto == pl.ICMP and (p.type, p.code) == (8, 0)
    assert (p.src, p.dst) == (POOL4, PEER4)
    assert p.icmp_seq == 9 and p.payload == b"ping!"
    assert nat.bib("icmp") == [(CLIENT6, 1234, POOL4, mask, False)]
    [s] = nat.sessions("icmp", T0)
    assert (s.src6, s.sport6, s.dst6, s.dport6) == (CLIENT6, 1234, PEER6, 1234)
    assert (s.src4, s.sport4, s.dst4, s.dport4) == (POOL4, mask, PEER4, mask)
    assert s.expires_in_ms == ICMP_TO
    # The reply goes back with the client's identifier.
    r = nat.send(echo4(mask, seq=9, reply=True, payload=b"pong!"), T0 + 10)
    q = expect_translated(r, 6)
    assert q.proto == pl.ICMPV6 and (q.type, q.code) == (129, 0)
    assert (q.src, q.dst) == (PEER6, CLIENT6)
    assert (q.icmp_id, q.icmp_seq) == (1234, 9) and q.payload == b"pong!"
    assert len(nat.sessions("icmp", T0 + 10)) == 1


def test_icmp_echo_expiry(nat):
    mask = expect_translated(nat.send(echo6(77), T0), 4).icmp_id
    t1 = T0 + 30_000
    expect_translated(nat.send(echo4(mask, reply=True), t1), 6)   # refresh from IPv4
    [s] = nat.sessions("icmp", t1)
    assert s.expires_in_ms == ICMP_TO
    nat.expire(t1 + ICMP_TO - 1)
    assert len(nat.sessions("icmp", t1 + ICMP_TO - 1)) == 1
    nat.expire(t1 + ICMP_TO)
    assert nat.sessions("icmp", t1 + ICMP_TO) == [] and nat.bib("icmp") == []
    assert nat.gauges() == (0, 0)


def test_icmp_identifiers_are_ports(nat):
    a = expect_translated(nat.send(echo6(1), T0), 4).icmp_id
    b = expect_translated(nat.send(echo6(2), T0), 4).icmp_id
    c = expect_translated(nat.send(echo6(1, dst=PEER6B), T0), 4).icmp_id
    assert a != b and a == c
    assert len(nat.bib("icmp")) == 2 and len(nat.sessions("icmp", T0)) == 3


def test_icmp_ipv4_echo_without_bib_passes(nat):
    r = nat.send(echo4(1500), T0)
    expect_verdict(r, Verdict.PASS, "JSTAT_BIB4_NOT_FOUND")


def test_icmp_ipv4_echo_request_with_static_bib(nat):
    nat.t.bib_add("icmp", CLIENT6, 99, POOL4, STATIC_PORT)
    r = nat.send(echo4(STATIC_PORT, src=PEER4B), T0)
    q = expect_translated(r, 6)
    assert (q.type, q.icmp_id, q.src, q.dst) == (128, 99, PEER6B, CLIENT6)
    [s] = nat.sessions("icmp", T0)
    assert (s.dst4, s.dport4, s.sport6, s.dport6) == (PEER4B, STATIC_PORT, 99, 99)


# ========================================================== gauges / events
def test_gauges_track_tables(nat):
    assert nat.gauges() == (0, 0)
    expect_translated(nat.send(udp6(), T0), 4)
    expect_translated(nat.send(udp6(dst=PEER6B), T0), 4)
    expect_translated(nat.send(echo6(5), T0), 4)
    expect_translated(nat.send(tcp6(pl.SYN), T0), 4)
    assert nat.gauges() == (3, 4)
    nat.expire(T0 + ICMP_TO)
    assert nat.gauges() == (2, 3)
    nat.expire(T0 + TRANS)
    assert nat.gauges() == (1, 2)
    nat.expire(T0 + UDP_TO)
    assert nat.gauges() == (0, 0)


def test_session_events(nat):
    nat.t.session_events()          # drain anything left over
    expect_translated(nat.send(udp6(), T0), 4)
    mask = nat.mask("udp")
    evs = nat.t.session_events()
    # The mapping's event (logging-bib), then the session's.
    assert [k for k, _ in evs] == ["bib-created", "created"], evs
    bib = evs[0][1]
    assert (ip(bib["src6"]), bib["sport6"], ip(bib["src4"]), bib["sport4"], bib["static"]) == (
        CLIENT6, C_PORT, POOL4, nat.mask("udp"), False)
    evs = evs[1:]
    kind, d = evs[0]
    assert event_kind(kind) == "add", kind
    assert (ip(d["src6"]), int(d["sport6"]), ip(d["dst4"]), int(d["dport4"])) == (
        CLIENT6, C_PORT, PEER4, PEER_PORT)
    assert (ip(d["src4"]), int(d["sport4"])) == (POOL4, mask)
    assert nat.t.session_events() == [], "the ring is drained"
    # A refresh is not a creation.
    expect_translated(nat.send(udp6(), T0 + 10), 4)
    assert all(event_kind(k) != "add" for k, _ in nat.t.session_events())
    nat.expire(T0 + 10 + UDP_TO)
    evs = [(event_kind(k), d) for k, d in nat.t.session_events()]
    removed = [d for k, d in evs if k == "remove"]
    assert len(removed) == 1, evs
    assert (ip(removed[0]["src6"]), int(removed[0]["sport6"])) == (CLIENT6, C_PORT)
    assert not any(k == "add" for k, _ in evs)
    # The last session gone, its dynamic mapping goes too, after it.
    assert [k for k, _ in evs][-1] == "bib-remove", evs


def test_session_events_tcp_created_and_removed(nat):
    nat.t.session_events()
    expect_translated(nat.send(tcp6(pl.SYN), T0), 4)
    expect_translated(nat.send(tcp6(pl.SYN, dst=PEER6B), T0), 4)
    evs = [(event_kind(k), ip(d["dst4"])) for k, d in nat.t.session_events()
           if not event_kind(k).startswith("bib-")]
    assert sorted(e for e in evs if e[0] == "add") == sorted(
        [("add", PEER4), ("add", PEER4B)]), evs
    nat.expire(T0 + TRANS)
    evs = [(event_kind(k), ip(d["dst4"])) for k, d in nat.t.session_events()
           if not event_kind(k).startswith("bib-")]
    assert sorted(e for e in evs if e[0] == "remove") == sorted(
        [("remove", PEER4), ("remove", PEER4B)]), evs


def test_millisecond_clock_wraparound(nat):
    """now_ms is a 32-bit millisecond clock (the API takes uint32): ages are computed
    modulo 2**32, as Jool's jiffies comparisons are."""
    start = 2 ** 32 - 100_000
    expect_translated(nat.send(udp6(), start), 4)
    later = (start + 200_000) % 2 ** 32
    [s] = nat.sessions("udp", later)
    assert s.expires_in_ms == UDP_TO - 200_000
    nat.expire(later)
    assert len(nat.sessions("udp", later)) == 1
    nat.expire((start + UDP_TO - 1) % 2 ** 32)
    assert len(nat.sessions("udp", (start + UDP_TO - 1) % 2 ** 32)) == 1
    nat.expire((start + UDP_TO) % 2 ** 32)
    assert nat.sessions("udp", (start + UDP_TO) % 2 ** 32) == []


def test_timeout_change_applies_to_existing_sessions(nat):
    """globals.md: expiry is computed from the current timeout at check time."""
    configure = getattr(nat.t, "configure_nat64", None)
    if configure is None:
        pytest.skip("no runtime NAT64 reconfiguration in this API")
    expect_translated(nat.send(udp6(), T0), 4)
    expect_translated(nat.send(echo6(9), T0), 4)
    configure(address_dependent_filtering=False, drop_externally_initiated_tcp=False,
              handle_rst_during_fin_rcv=False, f_args=0b1011, maximum_simultaneous_opens=10,
              tcp_est_timeout=7_200_000, tcp_trans_timeout=240_000, udp_timeout=120_000,
              icmp_timeout=1_000, empty_pool4_addr=POOL4)
    assert nat.session("udp", T0 + 20_000).expires_in_ms == 100_000
    nat.expire(T0 + 1_000)
    assert nat.sessions("icmp", T0 + 1_000) == []
    nat.expire(T0 + 120_000)
    assert nat.sessions("udp", T0 + 120_000) == []


def test_attached_tables_share_state(nat):
    """Tables.attach(name) maps the same segment: a second translator (as another
    process would) sees and uses the sessions the first one created."""
    other_tables = Tables.attach(nat.tables.name)
    try:
        other = Nat64(other_tables)
        mask = expect_translated(nat.send(udp6(), T0), 4).sport
        assert [s.sport4 for s in other.sessions("udp", T0)] == [mask]
        p = expect_translated(other.send(udp4(mask, payload=b"via other"), T0 + 5), 6)
        check_46(p, proto=pl.UDP)
        assert other.gauges() == (1, 1)
        [s] = nat.sessions("udp", T0 + 5)
        assert s.expires_in_ms == UDP_TO, "refreshed through the other mapping"
        other.expire(T0 + 5 + UDP_TO)
        assert nat.sessions("udp", T0 + 5 + UDP_TO) == [] and nat.gauges() == (0, 0)
        other.close()
    finally:
        gc.collect()
        other_tables.close()


def test_full_session_table_drops_enomem_without_leaking():
    """A full table drops new flows (JSTAT_ENOMEM) and leaves no half-made BIB entry;
    expiry makes room again."""
    tb = Tables.create(capacity=8)
    try:
        n = Nat64(tb)
        cap = tb.capacity
        for i in range(cap):
            expect_translated(n.send(udp6(dport=1000 + i), T0), 4)
        assert n.gauges() == (1, cap)
        for pkt in (udp6(dport=999), udp6(src=CLIENT6B), tcp6(pl.SYN, src=CLIENT6B),
                    echo6(3)):
            expect_verdict(n.send(pkt, T0 + 1), Verdict.DROP, "JSTAT_ENOMEM")
        assert n.gauges() == (1, cap)
        assert tb.check() == []
        n.expire(T0 + UDP_TO)
        assert n.gauges() == (0, 0)
        expect_translated(n.send(udp6(src=CLIENT6B), T0 + UDP_TO), 4)
        assert n.gauges() == (1, 1)
        n.close()
    finally:
        gc.collect()
        tb.close()
        tb.unlink()
