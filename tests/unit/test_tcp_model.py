"""Model-based test of one TCP flow: random sequences of packets (either side, any
flags), time gaps and timer sweeps, compared step by step with a small reference
model written from spec/behaviour.md §5.2, §7, §8.1, §8.2 and §9 (type 2).

The client has a static TCP BIB entry, so every CLOSED-state row is reachable from
both sides. expire(now) is called before every packet, as the periodic sweep would.
"""
import gc

import pytest

from _nat64 import (C_PORT, CLIENT6, EST, PEER4, POOL4, STATIC_PORT, SYN4, TRANS, Nat64,
                    OutKind, Tables, Verdict, pl, tcp4, tcp6)

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

SYN, ACK, FIN, RST = pl.SYN, pl.ACK, pl.FIN, pl.RST
FLAGS = {"syn": SYN, "synack": SYN | ACK, "ack": ACK, "fin": FIN | ACK, "rst": RST,
         "finrst": FIN | RST}
GAPS = [0, 1, 999, SYN4 - 1, SYN4, TRANS - 1, TRANS, EST - 1, EST, EST + TRANS]
TIMEOUT = {"EST": EST, "TRANS": TRANS, "SYN4": SYN4}


class Model:
    """The spec's view of the single session (None = CLOSED)."""

    def __init__(self, adf, drop_ext, handle_rst):
        self.adf, self.drop_ext, self.handle_rst = adf, drop_ext, handle_rst
        self.state = None
        self.timer = None
        self.last = None
        self.stored = False

    def _set(self, state, timer, now):
        self.state = state
        if timer is not None:
            self.timer, self.last = timer, now

    def expire(self, now):
        """Returns the list of expected output kinds ("probe" / "icmp")."""
        if self.state is None or now - self.last < TIMEOUT[self.timer]:
            return []
        if self.timer == "EST" and self.state == "ESTABLISHED":
            self._set("TRANS", "TRANS", now)
            return ["probe"]
        out = ["icmp"] if self.timer == "SYN4" and self.stored else []
        self.state, self.stored = None, False
        return out

    def packet(self, side, flags, now):
        """Returns (translated?, counter name or None)."""
        syn, fin, rst = flags & SYN, flags & FIN, flags & RST
        st = self.state
        if st is None:                                        # CLOSED
            if side == 6:
                if syn:
                    self._set("V6_INIT", "TRANS", now)
                return True, None
            if not syn:
                return True, None
            if self.drop_ext:
                return False, "JSTAT_V4_SYN"
            if self.adf:
                self._set("V4_INIT", "SYN4", now)
                self.stored = True
                return False, "JSTAT_TYPE2PKT"
            self._set("V4_INIT", "TRANS", now)
            return True, None
        if st == "V4_INIT" and self.stored and side == 4:
            return False, "JSTAT_SO_EXISTS"
        if st == "V6_INIT":
            if syn:
                self._set("ESTABLISHED" if side == 4 else "V6_INIT",
                          "EST" if side == 4 else "TRANS", now)
        elif st == "V4_INIT":
            if syn and side == 6:
                self.stored = False
                self._set("ESTABLISHED", "EST", now)
        elif st == "ESTABLISHED":
            if fin:
                self._set("V4_FIN_RCV" if side == 4 else "V6_FIN_RCV", None, now)
            elif rst:
                self._set("TRANS", "TRANS", now)
            else:
                self._set("ESTABLISHED", "EST", now)
        elif st in ("V4_FIN_RCV", "V6_FIN_RCV"):
            other = 6 if st == "V4_FIN_RCV" else 4
            if fin and side == other:
                self._set("V4_FIN_V6_FIN_RCV", "TRANS", now)
            elif rst and self.handle_rst:
                self._set(st, "TRANS", now)
            else:
                self._set(st, "EST", now)
        elif st == "TRANS":
            if not rst:
                self._set("ESTABLISHED", "EST", now)
        return True, None


steps = st.lists(st.tuples(st.sampled_from(GAPS), st.sampled_from([4, 6]),
                           st.sampled_from(sorted(FLAGS))), min_size=1, max_size=14)


@hypothesis.settings(max_examples=150, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(adf=st.booleans(), drop_ext=st.booleans(), handle_rst=st.booleans(),
                  seq=steps)
def test_tcp_flow_follows_the_model(adf, drop_ext, handle_rst, seq):
    tb = Tables.create(capacity=64)
    n = None
    try:
        n = Nat64(tb, address_dependent_filtering=adf, drop_externally_initiated_tcp=drop_ext,
                  handle_rst_during_fin_rcv=handle_rst)
        n.t.bib_add("tcp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
        m = Model(adf, drop_ext, handle_rst)
        now = 1000
        trace = []
        for gap, side, name in seq:
            now += gap
            flags = FLAGS[name]
            trace.append((gap, side, name))
            # The sweep.
            outs = n.expire(now)
            expected = m.expire(now)
            kinds = ["probe" if k & 0xF == 6 else "icmp" for k, _ in outs]
            assert kinds == expected, trace
            for k, p in outs:
                if k & 0xF == 6:
                    assert (p.flags, p.dst, p.dport) == (ACK, CLIENT6, C_PORT)
                else:
                    assert k == OutKind.ICMP4_ERROR and (p.type, p.code) == (3, 3)
                    assert p.dst == PEER4 and p.inner.flags & SYN
            # The packet.
            pkt = tcp6(flags) if side == 6 else tcp4(flags, STATIC_PORT)
            r = n.send(pkt, now)
            translated, counter = m.packet(side, flags, now)
            if translated:
                assert r.verdict == Verdict.TRANSLATED and len(r.outputs) == 1, (trace, r)
                assert r.pkt.flags == flags
            else:
                assert r.verdict != Verdict.TRANSLATED and not r.outputs, (trace, r)
                assert r.delta.get(counter) == 1, (trace, r)
            # The session as the API shows it.
            sessions = n.sessions("tcp", now)
            if m.state is None:
                assert sessions == [], (trace, sessions)
            else:
                assert len(sessions) == 1, (trace, sessions)
                s = sessions[0]
                assert s.state == m.state, (trace, s)
                assert s.expires_in_ms == m.last + TIMEOUT[m.timer] - now, (trace, s, m.timer)
        assert tb.check() == []
    finally:
        if n is not None:
            n.close()
        gc.collect()
        tb.close()
        tb.unlink()
