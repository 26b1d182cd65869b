"""Model-based test of the type 1 simultaneous-open store (spec/behaviour.md §9):
random IPv4 SYNs from three remote endpoints to three pool4 ports without BIB, IPv6
SYNs from fresh clients towards those endpoints, and sweeps, with a random
maximum-simultaneous-opens; compared step by step with a reference model."""
import gc

import pytest

from _nat64 import (PEER4, PEER4B, POOL4, SYN4, Nat64, OutKind, Tables, Verdict, pl, tcp4,
                    tcp6)

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

SYN, ACK = pl.SYN, pl.ACK
REMOTES = [(PEER4, 80), (PEER4, 81), (PEER4B, 80)]
LOCAL_PORTS = [100, 101, 102]
GAPS = [0, 1, 1999, SYN4 - 1, SYN4]

ops = st.lists(st.one_of(
    st.tuples(st.just("syn4"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("v6"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("gap"), st.sampled_from(GAPS), st.just(0))), min_size=1, max_size=14)


@hypothesis.settings(max_examples=150, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(limit=st.integers(0, 3), seq=ops)
def test_type1_store_follows_the_model(limit, seq):
    tb = Tables.create(capacity=64)
    n = None
    try:
        n = Nat64(tb, maximum_simultaneous_opens=limit)
        stored = {}             # remote index -> (local port, stored at, packet)
        now = 1000
        clients = 0
        trace = []

        def bib_on(port):
            return any(b[2] == POOL4 and b[3] == port for b in n.bib("tcp"))

        for op, a, b in seq:
            trace.append((op, a, b))
            if op == "gap":
                now += a
                outs = n.expire(now)
                due = {k for k, (_, t, _) in stored.items() if now - t >= SYN4}
                got = sorted((p.dst, p.inner.sport, p.quoted) for _, p in outs)
                want = sorted((REMOTES[k][0], REMOTES[k][1], stored[k][2]) for k in due)
                assert got == want, trace
                assert all(k == OutKind.ICMP4_ERROR and (p.type, p.code) == (3, 3)
                           for k, p in outs)
                for k in due:
                    del stored[k]
            elif op == "syn4":
                addr, port = REMOTES[a]
                lport = LOCAL_PORTS[b]
                pkt = tcp4(SYN, lport, src=addr, sport=port, seq=len(trace))
                r = n.send(pkt, now)
                if bib_on(lport):
                    assert r.verdict == Verdict.TRANSLATED, (trace, r)
                elif a in stored:
                    assert r.verdict == Verdict.DROP, (trace, r)
                    assert r.delta.get("JSTAT_SO_EXISTS") == 1, (trace, r)
                elif len(stored) >= limit:
                    assert r.verdict == Verdict.DROP_ICMP, (trace, r)
                    assert r.delta.get("JSTAT_SO_FULL") == 1, (trace, r)
                    assert r.pkt.dst == addr and r.pkt.quoted == pkt
                else:
                    assert r.verdict not in (Verdict.TRANSLATED, Verdict.PASS), (trace, r)
                    assert r.delta.get("JSTAT_TYPE1PKT") == 1 and not r.outputs, (trace, r)
                    stored[a] = (lport, now, pkt)
            else:
                addr, port = REMOTES[a]
                clients += 1
                src6 = "2001:db8::%x" % (0x1000 + clients)
                releasable = a in stored and not bib_on(stored[a][0])
                r = n.send(tcp6(SYN, src=src6, sport=7000,
                                dst=pl.embed("64:ff9b::/96", addr), dport=port), now)
                assert r.verdict == Verdict.TRANSLATED, (trace, r)
                p = r.pkt
                [s] = [s for s in n.sessions("tcp", now) if s.src6 == src6]
                if releasable:
                    assert p.sport == stored[a][0], trace
                    assert s.state == "ESTABLISHED", (trace, s)
                    del stored[a]
                else:
                    assert s.state == "V6_INIT", (trace, s)
            assert n.counter("JSTAT_TYPE1PKT") >= len(stored)
        assert tb.check() == []
    finally:
        if n is not None:
            n.close()
        gc.collect()
        tb.close()
        tb.unlink()
