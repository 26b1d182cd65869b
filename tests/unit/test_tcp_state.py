"""The TCP state machine of spec/behaviour.md §7, row by row, driven by real packets.

For each (state, event): the state is built by packets, the event packet is sent 3 s
after the last packet, then the new state (Translator.sessions), the timer effect
(expires_in_ms: EST / TRANS timeout, or the old absolute expiry for "keep"), the
verdict and the translated packet are checked. Expiry actions are checked through
Translator.expire(now), which is exact (no 2 s granularity).
"""
import pytest

from _nat64 import (C_PORT, CLIENT6, EST, OWN4, PEER4, PEER4B, PEER6, PEER6B, PEER_PORT,
                    POOL4, POOL4_MAX, POOL4_MIN, STATIC_PORT, SYN4, TRANS, OutKind, Verdict,
                    check_46, check_64, expect_held, expect_translated, expect_verdict, make_nat,
                    nat, pl, tables, tcp4, tcp6)

_FIXTURES = (make_nat, nat, tables)  # re-exported pytest fixtures

SYN, ACK, FIN, RST = pl.SYN, pl.ACK, pl.FIN, pl.RST
T0 = 10_000
STEP = 1_000      # between the packets that build a state
GAP = 3_000       # between the last building packet and the event

EVENTS = {
    # name: (family of the sender, TCP flags, payload)
    "syn6": (6, SYN, b""),
    "syn4": (4, SYN, b""),
    "synack4": (4, SYN | ACK, b""),
    "ack6": (6, ACK, b"data6"),
    "ack4": (4, ACK, b"data4"),
    "fin6": (6, FIN | ACK, b""),
    "fin4": (4, FIN | ACK, b""),
    "rst6": (6, RST, b""),
    "rst4": (4, RST, b""),
}


class Conv:
    """The conversation CLIENT6#C_PORT <-> PEER4#PEER_PORT."""

    def __init__(self, nat):
        self.nat = nat
        self.mask = None
        self.expiry = None    # absolute expiry time of the session

    def send(self, event, now):
        family, flags, payload = EVENTS[event]
        if family == 6:
            r = self.nat.send(tcp6(flags, payload=payload), now)
            if self.mask is None and self.nat.bib_of("tcp") is not None:
                self.mask = self.nat.mask("tcp")
        else:
            assert self.mask is not None
            r = self.nat.send(tcp4(flags, self.mask, payload=payload), now)
        return r

    def sess(self, now):
        return self.nat.session("tcp", now, src6=CLIENT6, sport6=C_PORT, dst4=PEER4,
                                dport4=PEER_PORT)

    def check_output(self, event, r):
        family, flags, payload = EVENTS[event]
        p = expect_translated(r, 4 if family == 6 else 6)
        if family == 6:
            check_64(p, self.mask)
        else:
            check_46(p)
        assert p.flags == flags and p.payload == payload, p
        return p


def build(nat, state):
    """Drive a fresh conversation into `state` with real packets; returns (conv,
    time of the last packet). conv.expiry = absolute expiry of the session."""
    c = Conv(nat)
    t = T0

    def step(event, expect_state, timeout, translated=True):
        nonlocal t
        r = c.send(event, t)
        if translated:
            c.check_output(event, r)
        s = c.sess(t)
        assert s is not None, "no session after %s at %d" % (event, t)
        assert s.state == expect_state, (event, s)
        if timeout is not None:
            assert s.expires_in_ms == timeout, (event, s)
            c.expiry = t + timeout
        else:
            assert s.expires_in_ms == c.expiry - t, (event, s)
        last = t
        t += STEP
        return last

    if state in ("V4_INIT", "V4_INIT_STORED"):
        nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
        c.mask = STATIC_PORT
        if state == "V4_INIT":
            return c, step("syn4", "V4_INIT", TRANS)
        r = c.send("syn4", t)
        expect_held(r, "JSTAT_TYPE2PKT")
        s = c.sess(t)
        assert s is not None and s.state == "V4_INIT" and s.expires_in_ms == SYN4, s
        c.expiry = t + SYN4
        return c, t
    last = step("syn6", "V6_INIT", TRANS)
    if state == "V6_INIT":
        return c, last
    last = step("synack4", "ESTABLISHED", EST)
    if state == "ESTABLISHED":
        return c, last
    if state == "TRANS":
        return c, step("rst6", "TRANS", TRANS)
    if state == "V4_FIN_RCV":
        return c, step("fin4", "V4_FIN_RCV", None)
    if state == "V6_FIN_RCV":
        return c, step("fin6", "V6_FIN_RCV", None)
    if state == "V4_FIN_V6_FIN_RCV":
        step("fin4", "V4_FIN_RCV", None)
        return c, step("fin6", "V4_FIN_V6_FIN_RCV", TRANS)
    raise AssertionError(state)


# (state, event, new state, timer, Translator options). Timer: "EST", "TRANS" or
# "KEEP" (neither the timer nor the update time changes).
ROWS = [
    ("V6_INIT", "synack4", "ESTABLISHED", "EST", {}),
    ("V6_INIT", "syn4", "ESTABLISHED", "EST", {}),
    ("V6_INIT", "synack4", "ESTABLISHED", "EST", {"address_dependent_filtering": True}),
    ("V6_INIT", "syn4", "ESTABLISHED", "EST", {"drop_externally_initiated_tcp": True}),
    ("V6_INIT", "syn6", "V6_INIT", "TRANS", {}),
    ("V6_INIT", "ack6", "V6_INIT", "KEEP", {}),
    ("V6_INIT", "ack4", "V6_INIT", "KEEP", {}),
    ("V6_INIT", "fin6", "V6_INIT", "KEEP", {}),
    ("V6_INIT", "rst4", "V6_INIT", "KEEP", {}),
    ("V6_INIT", "rst6", "V6_INIT", "KEEP", {}),
    ("V4_INIT", "syn6", "ESTABLISHED", "EST", {}),
    ("V4_INIT", "ack6", "V4_INIT", "KEEP", {}),
    ("V4_INIT", "ack4", "V4_INIT", "KEEP", {}),
    ("V4_INIT", "syn4", "V4_INIT", "KEEP", {}),
    ("V4_INIT", "rst4", "V4_INIT", "KEEP", {}),
    ("V4_INIT_STORED", "syn6", "ESTABLISHED", "EST", {"address_dependent_filtering": True}),
    ("V4_INIT_STORED", "ack6", "V4_INIT", "KEEP", {"address_dependent_filtering": True}),
    ("ESTABLISHED", "fin4", "V4_FIN_RCV", "KEEP", {}),
    ("ESTABLISHED", "fin6", "V6_FIN_RCV", "KEEP", {}),
    ("ESTABLISHED", "rst4", "TRANS", "TRANS", {}),
    ("ESTABLISHED", "rst6", "TRANS", "TRANS", {}),
    ("ESTABLISHED", "rst6", "TRANS", "TRANS", {"handle_rst_during_fin_rcv": True}),
    ("ESTABLISHED", "ack4", "ESTABLISHED", "EST", {}),
    ("ESTABLISHED", "ack6", "ESTABLISHED", "EST", {}),
    ("ESTABLISHED", "syn6", "ESTABLISHED", "EST", {}),
    ("ESTABLISHED", "synack4", "ESTABLISHED", "EST", {}),
    ("V4_FIN_RCV", "fin6", "V4_FIN_V6_FIN_RCV", "TRANS", {}),
    ("V4_FIN_RCV", "fin4", "V4_FIN_RCV", "EST", {}),
    ("V4_FIN_RCV", "ack4", "V4_FIN_RCV", "EST", {}),
    ("V4_FIN_RCV", "ack6", "V4_FIN_RCV", "EST", {}),
    ("V4_FIN_RCV", "rst4", "V4_FIN_RCV", "EST", {}),
    ("V4_FIN_RCV", "rst6", "V4_FIN_RCV", "EST", {}),
    ("V4_FIN_RCV", "rst4", "V4_FIN_RCV", "TRANS", {"handle_rst_during_fin_rcv": True}),
    ("V4_FIN_RCV", "rst6", "V4_FIN_RCV", "TRANS", {"handle_rst_during_fin_rcv": True}),
    ("V4_FIN_RCV", "ack6", "V4_FIN_RCV", "EST", {"handle_rst_during_fin_rcv": True}),
    ("V6_FIN_RCV", "fin4", "V4_FIN_V6_FIN_RCV", "TRANS", {}),
    ("V6_FIN_RCV", "fin6", "V6_FIN_RCV", "EST", {}),
    ("V6_FIN_RCV", "ack4", "V6_FIN_RCV", "EST", {}),
    ("V6_FIN_RCV", "ack6", "V6_FIN_RCV", "EST", {}),
    ("V6_FIN_RCV", "rst4", "V6_FIN_RCV", "EST", {}),
    ("V6_FIN_RCV", "rst6", "V6_FIN_RCV", "EST", {}),
    ("V6_FIN_RCV", "rst4", "V6_FIN_RCV", "TRANS", {"handle_rst_during_fin_rcv": True}),
    ("V6_FIN_RCV", "rst6", "V6_FIN_RCV", "TRANS", {"handle_rst_during_fin_rcv": True}),
    ("V6_FIN_RCV", "ack4", "V6_FIN_RCV", "EST", {"handle_rst_during_fin_rcv": True}),
    ("V4_FIN_V6_FIN_RCV", "ack4", "V4_FIN_V6_FIN_RCV", "KEEP", {}),
    ("V4_FIN_V6_FIN_RCV", "ack6", "V4_FIN_V6_FIN_RCV", "KEEP", {}),
    ("V4_FIN_V6_FIN_RCV", "fin4", "V4_FIN_V6_FIN_RCV", "KEEP", {}),
    ("V4_FIN_V6_FIN_RCV", "fin6", "V4_FIN_V6_FIN_RCV", "KEEP", {}),
    ("V4_FIN_V6_FIN_RCV", "rst4", "V4_FIN_V6_FIN_RCV", "KEEP", {}),
    ("V4_FIN_V6_FIN_RCV", "rst6", "V4_FIN_V6_FIN_RCV", "KEEP",
     {"handle_rst_during_fin_rcv": True}),
    ("V4_FIN_V6_FIN_RCV", "syn6", "V4_FIN_V6_FIN_RCV", "KEEP", {}),
    ("TRANS", "ack4", "ESTABLISHED", "EST", {}),
    ("TRANS", "ack6", "ESTABLISHED", "EST", {}),
    ("TRANS", "syn6", "ESTABLISHED", "EST", {}),
    ("TRANS", "fin6", "ESTABLISHED", "EST", {}),
    ("TRANS", "rst4", "TRANS", "KEEP", {}),
    ("TRANS", "rst6", "TRANS", "KEEP", {}),
]


def _row_id(row):
    state, event, new, timer, opts = row
    extra = "-" + "-".join(k.split("_")[0] for k in opts) if opts else ""
    return "%s-%s%s" % (state, event, extra)


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_state_table_row(make_nat, row):
    state, event, new_state, timer, opts = row
    n = make_nat(**opts)
    c, last = build(n, state)
    before = n.gauges()
    now = last + GAP
    r = c.send(event, now)
    c.check_output(event, r)
    s = c.sess(now)
    assert s is not None, "session vanished"
    assert s.state == new_state, s
    expected = {"EST": EST, "TRANS": TRANS, "KEEP": c.expiry - now}[timer]
    assert s.expires_in_ms == expected, (timer, s)
    # A transition never creates or removes entries.
    assert n.gauges() == before
    assert len(n.sessions("tcp", now)) == 1


@pytest.mark.parametrize("event", ["ack4", "syn4", "rst4", "fin4"])
def test_v4_init_stored_syn_ipv4_packet_dropped(make_nat, event):
    """V4_INIT holding a stored IPv4 SYN: any IPv4 packet of the session is dropped
    (SO_EXISTS), the state and timer do not change."""
    n = make_nat(address_dependent_filtering=True)
    c, last = build(n, "V4_INIT_STORED")
    now = last + GAP
    r = c.send(event, now)
    expect_verdict(r, Verdict.DROP, "JSTAT_SO_EXISTS")
    s = c.sess(now)
    assert s.state == "V4_INIT" and s.expires_in_ms == c.expiry - now, s
    # Still exactly one stored SYN: when the SYN4 timer fires, one Port Unreachable.
    outs = n.expire(c.expiry)
    assert len(outs) == 1 and outs[0][0] == OutKind.ICMP4_ERROR, outs
    e = outs[0][1]
    assert (e.type, e.code, e.dst) == (3, 3, PEER4)
    assert e.inner.flags == SYN, "the error must quote the stored SYN, not the later packet"


def test_v4_init_stored_syn_released_by_ipv6_syn(make_nat):
    """V4_INIT + IPv6 SYN -> ESTABLISHED; the stored IPv4 SYN is discarded silently:
    no ICMP when its 6 s would have elapsed, not translated either."""
    n = make_nat(address_dependent_filtering=True)
    c, last = build(n, "V4_INIT_STORED")
    now = last + GAP
    r = c.send("syn6", now)
    assert len(r.outputs) == 1, "only the IPv6 SYN's translation is sent"
    c.check_output("syn6", r)
    assert n.expire(c.expiry) == []
    assert n.expire(c.expiry + 10_000) == []
    s = c.sess(c.expiry + 10_000)
    assert s.state == "ESTABLISHED" and s.expires_in_ms == EST - (c.expiry + 10_000 - now)


# ================================================================== CLOSED rows
def test_closed_ipv6_syn_creates_bib_and_v6_init(nat):
    r = nat.send(tcp6(SYN), T0)
    p = expect_translated(r, 4)
    assert nat.bib("tcp") == [(CLIENT6, C_PORT, POOL4, p.sport, False)]
    assert POOL4_MIN <= p.sport <= POOL4_MAX
    check_64(p, p.sport)
    assert p.flags == SYN and p.seq == 100
    [s] = nat.sessions("tcp", T0)
    assert (s.src6, s.sport6, s.dst6, s.dport6) == (CLIENT6, C_PORT, PEER6, PEER_PORT)
    assert (s.src4, s.sport4, s.dst4, s.dport4) == (POOL4, p.sport, PEER4, PEER_PORT)
    assert s.state == "V6_INIT" and s.expires_in_ms == TRANS
    assert nat.gauges() == (1, 1)


@pytest.mark.parametrize("flags", [ACK, FIN | ACK, RST, ACK | pl.PSH])
def test_closed_ipv6_non_syn_without_bib_dropped(nat, flags):
    r = nat.send(tcp6(flags, payload=b"x"), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_SYN6_EXPECTED")
    assert nat.bib("tcp") == [] and nat.sessions("tcp", T0) == []
    assert nat.gauges() == (0, 0)


@pytest.mark.parametrize("flags", [ACK, FIN | ACK, RST])
def test_closed_ipv6_non_syn_with_static_bib_translated_no_session(nat, flags):
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = nat.send(tcp6(flags, payload=b"x"), T0)
    p = expect_translated(r, 4)
    check_64(p, STATIC_PORT)
    assert p.flags == flags
    assert nat.sessions("tcp", T0) == []
    assert nat.gauges() == (1, 0)


def test_closed_ipv6_non_syn_with_dynamic_bib_translated_no_session(nat):
    """The client's BIB exists because of a session to another peer."""
    expect_translated(nat.send(tcp6(SYN, dst=PEER6B), T0), 4)
    mask = nat.mask("tcp")
    r = nat.send(tcp6(ACK, payload=b"x"), T0 + 1)
    p = expect_translated(r, 4)
    check_64(p, mask)
    [s] = nat.sessions("tcp", T0 + 1)
    assert s.dst4 == PEER4B
    assert nat.gauges() == (1, 1)


@pytest.mark.parametrize("flags", [ACK, FIN | ACK, RST])
def test_closed_ipv4_non_syn_without_bib_dropped(nat, flags):
    r = nat.send(tcp4(flags, STATIC_PORT, payload=b"x"), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_SYN4_EXPECTED")
    assert nat.bib("tcp") == [] and nat.sessions("tcp", T0) == []


@pytest.mark.parametrize("flags", [ACK, FIN | ACK, RST])
def test_closed_ipv4_non_syn_with_bib_translated_no_session(nat, flags):
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = nat.send(tcp4(flags, STATIC_PORT, payload=b"x"), T0)
    p = expect_translated(r, 6)
    check_46(p)
    assert p.flags == flags and p.payload == b"x"
    assert nat.sessions("tcp", T0) == []
    assert nat.gauges() == (1, 0)


@pytest.mark.parametrize("static", [False, True])
def test_closed_ipv4_syn_drop_externally_initiated(make_nat, static):
    n = make_nat(drop_externally_initiated_tcp=True)
    if static:
        n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = n.send(tcp4(SYN, STATIC_PORT), T0)
    expect_verdict(r, Verdict.DROP, "JSTAT_V4_SYN")
    assert "JSTAT_TYPE1PKT" not in r.delta and "JSTAT_TYPE2PKT" not in r.delta
    assert n.sessions("tcp", T0) == []
    assert n.expire(T0 + SYN4) == [], "nothing was stored"


def test_closed_ipv4_syn_without_bib_is_stored_type1(nat):
    r = nat.send(tcp4(SYN, STATIC_PORT), T0)
    expect_held(r, "JSTAT_TYPE1PKT")
    assert nat.bib("tcp") == []


def test_closed_ipv4_syn_with_bib_adf_off(nat):
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = nat.send(tcp4(SYN, STATIC_PORT), T0)
    p = expect_translated(r, 6)
    check_46(p)
    assert p.flags == SYN
    [s] = nat.sessions("tcp", T0)
    assert s.state == "V4_INIT" and s.expires_in_ms == TRANS
    assert (s.src6, s.sport6, s.dst6, s.dport6) == (CLIENT6, C_PORT, PEER6, PEER_PORT)
    assert (s.src4, s.sport4, s.dst4, s.dport4) == (POOL4, STATIC_PORT, PEER4, PEER_PORT)
    assert "JSTAT_TYPE2PKT" not in r.delta


def test_closed_ipv4_syn_with_bib_adf_on_held(make_nat):
    n = make_nat(address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    r = n.send(tcp4(SYN, STATIC_PORT), T0)
    expect_held(r, "JSTAT_TYPE2PKT")
    assert "JSTAT_TYPE1PKT" not in r.delta
    [s] = n.sessions("tcp", T0)
    assert s.state == "V4_INIT" and s.expires_in_ms == SYN4


# ================================================================ expiry actions
def test_est_expiry_of_established_sends_probe(nat):
    c, last = build(nat, "ESTABLISHED")
    exp = c.expiry
    assert nat.expire(exp - 1) == []
    assert c.sess(exp - 1).state == "ESTABLISHED"
    outs = nat.expire(exp)
    assert len(outs) == 1, outs
    kind, p = outs[0]
    assert kind & 0xF == 6, kind
    # IPv6 TCP from dst6 to src6, ports swapped, ACK only, seq 0, ack 0, window
    # 8192, hop limit 255, no payload, valid checksum.
    assert p.version == 6 and p.proto == pl.TCP and p.exts == []
    assert (p.src, p.dst) == (PEER6, CLIENT6)
    assert (p.sport, p.dport) == (PEER_PORT, C_PORT)
    assert p.flags == ACK
    assert (p.seq, p.ack) == (0, 0)
    assert p.l4[12] >> 4 == 5 and len(p.l4) == 20 and p.payload == b""
    assert p.payload_length == 20
    assert p.l4[18:20] == b"\0\0", "urgent pointer"
    assert int.from_bytes(p.l4[14:16], "big") == 8192
    assert p.hlim == 255
    assert pl.l4_csum_ok(p)
    s = c.sess(exp)
    assert s.state == "TRANS" and s.expires_in_ms == TRANS, s
    # TRANS expiry removes it (and the dynamic BIB with it), with nothing sent.
    assert nat.expire(exp + TRANS - 1) == []
    assert c.sess(exp + TRANS - 1) is not None
    assert nat.expire(exp + TRANS) == []
    assert c.sess(exp + TRANS) is None
    assert nat.bib("tcp") == []
    assert nat.gauges() == (0, 0)


def test_probe_answered_reestablishes(nat):
    c, last = build(nat, "ESTABLISHED")
    nat.expire(c.expiry)
    now = c.expiry + 1000
    c.check_output("ack6", c.send("ack6", now))
    s = c.sess(now)
    assert s.state == "ESTABLISHED" and s.expires_in_ms == EST


@pytest.mark.parametrize("state", ["V4_FIN_RCV", "V6_FIN_RCV"])
def test_est_expiry_of_fin_rcv_removes(nat, state):
    c, last = build(nat, state)
    assert nat.expire(c.expiry - 1) == []
    assert c.sess(c.expiry - 1).state == state
    assert nat.expire(c.expiry) == []
    assert c.sess(c.expiry) is None
    assert nat.bib("tcp") == [] and nat.gauges() == (0, 0)


@pytest.mark.parametrize("state", ["V6_INIT", "V4_INIT", "TRANS", "V4_FIN_V6_FIN_RCV"])
def test_trans_expiry_removes(nat, state):
    c, last = build(nat, state)
    assert c.expiry == last + TRANS
    assert nat.expire(c.expiry - 1) == []
    assert c.sess(c.expiry - 1).state == state
    assert nat.expire(c.expiry) == []
    assert c.sess(c.expiry) is None
    if state == "V4_INIT":   # static BIB: never expires
        assert nat.bib("tcp") == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, True)]
        assert nat.gauges() == (1, 0)
    else:
        assert nat.bib("tcp") == [] and nat.gauges() == (0, 0)


def test_syn4_expiry_with_stored_syn_sends_port_unreachable(make_nat):
    n = make_nat(address_dependent_filtering=True)
    n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    syn = tcp4(SYN, STATIC_PORT, seq=4242)
    expect_held(n.send(syn, T0), "JSTAT_TYPE2PKT")
    assert n.expire(T0 + SYN4 - 1) == []
    assert n.sessions("tcp", T0 + SYN4 - 1)[0].state == "V4_INIT"
    outs = n.expire(T0 + SYN4)
    assert len(outs) == 1, outs
    kind, e = outs[0]
    assert kind == OutKind.ICMP4_ERROR
    assert e.version == 4 and e.proto == pl.ICMP and (e.type, e.code) == (3, 3)
    assert e.dst == PEER4 and e.src in (OWN4, POOL4), e
    assert pl.valid(e)
    assert e.quoted == syn, "the error quotes the stored SYN whole"
    assert n.sessions("tcp", T0 + SYN4) == []
    assert n.bib("tcp") == [(CLIENT6, C_PORT, POOL4, STATIC_PORT, True)]
    assert n.expire(T0 + 60_000) == [], "sent once"


def test_expiry_uses_last_update_time(nat):
    """ESTABLISHED refreshed by traffic: expiry is last update + tcp-est-timeout."""
    c, last = build(nat, "ESTABLISHED")
    t1 = last + 5_000_000
    c.send("ack4", t1)
    assert nat.expire(last + EST) == []
    assert c.sess(last + EST).state == "ESTABLISHED"
    assert len(nat.expire(t1 + EST)) == 1
    assert c.sess(t1 + EST).state == "TRANS"


def test_dynamic_bib_survives_while_another_session_lives(nat):
    expect_translated(nat.send(tcp6(SYN), T0), 4)                 # V6_INIT, TRANS timer
    mask = nat.mask("tcp")
    expect_translated(nat.send(tcp6(SYN, dst=PEER6B), T0 + 1000), 4)
    assert nat.mask("tcp") == mask, "endpoint-independent mapping"
    nat.expire(T0 + TRANS)
    [s] = nat.sessions("tcp", T0 + TRANS)
    assert s.dst4 == PEER4B
    assert nat.gauges() == (1, 1)
    nat.expire(T0 + 1000 + TRANS)
    assert nat.bib("tcp") == [] and nat.gauges() == (0, 0)


def test_many_probes_in_one_expire_call(nat):
    """expire() returns every probe owed, however many (the sweep may need several
    internal passes)."""
    n_peers = 2500
    nat.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
    # Documentation addresses only: 200 hosts x 13 ports.
    peers = [("198.51.100.%d" % (1 + i % 200), 1000 + i // 200) for i in range(n_peers)]
    for addr, port in peers:
        expect_translated(nat.send(tcp4(SYN, STATIC_PORT, src=addr, sport=port), T0), 6)
        expect_translated(nat.send(tcp6(SYN | ACK, dst=pl.embed("64:ff9b::/96", addr),
                                        dport=port), T0), 4)
    assert nat.gauges() == (1, n_peers)
    outs = nat.expire(T0 + EST)
    assert len(outs) == n_peers
    got = sorted((p.src, p.sport) for _, p in outs)
    assert got == sorted((pl.embed("64:ff9b::/96", a), port) for a, port in peers)
    assert all(p.flags == ACK and p.dst == CLIENT6 and p.dport == C_PORT for _, p in outs)
    assert {s.state for s in nat.sessions("tcp", T0 + EST)} == {"TRANS"}
    assert nat.expire(T0 + EST + TRANS) == []
    assert nat.gauges() == (1, 0)
