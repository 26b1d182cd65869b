"""Model-based test of one UDP client talking with three remote endpoints (two share
an address): random packets from either side, time gaps and sweeps, with and
without address-dependent filtering, with a dynamic or a static BIB entry; compared
step by step with a reference model of spec/behaviour.md §5.1-§5.3 and §8.1."""
import gc

import pytest

from _nat64 import (C_PORT, CLIENT6, PEER4, PEER4B, POOL4, STATIC_PORT, UDP_TO, Nat64,
                    OutKind, Tables, Verdict, pl, udp4, udp6)

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

REMOTES = [(PEER4, 80), (PEER4, 81), (PEER4B, 80)]
GAPS = [0, 1, 1000, UDP_TO // 2, UDP_TO - 1, UDP_TO]

ops = st.lists(st.one_of(
    st.tuples(st.just("v6"), st.integers(0, len(REMOTES) - 1)),
    st.tuples(st.just("v4"), st.integers(0, len(REMOTES) - 1)),
    st.tuples(st.just("gap"), st.sampled_from(GAPS))), min_size=1, max_size=16)


@hypothesis.settings(max_examples=150, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(adf=st.booleans(), static=st.booleans(), seq=ops)
def test_udp_flow_follows_the_model(adf, static, seq):
    tb = Tables.create(capacity=64)
    n = None
    try:
        n = Nat64(tb, address_dependent_filtering=adf)
        if static:
            n.t.bib_add("udp", CLIENT6, C_PORT, POOL4, STATIC_PORT)
        sessions = {}               # remote index -> last update
        mask = STATIC_PORT if static else None
        last_mask = mask or 2999    # where IPv4 packets go while no BIB exists
        now = 5000
        trace = []
        for op, arg in seq:
            trace.append((op, arg))
            if op == "gap":
                now += arg
                n.expire(now)
                sessions = {k: t for k, t in sessions.items() if now - t < UDP_TO}
                if not static and not sessions:
                    mask = None
            elif op == "v6":
                addr, port = REMOTES[arg]
                r = n.send(udp6(dst=pl.embed("64:ff9b::/96", addr), dport=port), now)
                assert r.verdict == Verdict.TRANSLATED, (trace, r)
                p = r.pkt
                if mask is None:
                    mask = last_mask = p.sport
                assert (p.src, p.sport, p.dst, p.dport) == (POOL4, mask, addr, port), trace
                sessions[arg] = now
            else:
                addr, port = REMOTES[arg]
                r = n.send(udp4(last_mask if mask is None else mask, src=addr, sport=port),
                           now)
                if mask is None:
                    assert r.verdict == Verdict.PASS, (trace, r)
                    assert r.delta.get("JSTAT_BIB4_NOT_FOUND") == 1, (trace, r)
                elif arg in sessions or not adf or any(
                        REMOTES[k][0] == addr for k in sessions):
                    assert r.verdict == Verdict.TRANSLATED, (trace, r)
                    p = r.pkt
                    assert (p.dst, p.dport, p.sport) == (CLIENT6, C_PORT, port), trace
                    sessions[arg] = now
                else:
                    assert r.verdict == Verdict.DROP_ICMP, (trace, r)
                    assert r.delta.get("JSTAT_ADF") == 1, (trace, r)
                    assert r.kinds == [OutKind.ICMP4_ERROR] and r.pkt.dst == addr
                    assert (r.pkt.type, r.pkt.code) == (3, 13)
            # Compare the tables.
            got = sorted(((s.dst4, s.dport4), s.expires_in_ms) for s in n.sessions("udp", now))
            want = sorted((REMOTES[k], t + UDP_TO - now) for k, t in sessions.items())
            assert got == want, trace
            bib = n.bib("udp")
            assert bib == ([] if mask is None else [(CLIENT6, C_PORT, POOL4, mask, static)]), \
                trace
            assert n.gauges() == (len(bib), len(sessions)), trace
        assert tb.check() == []
    finally:
        if n is not None:
            n.close()
        gc.collect()
        tb.close()
        tb.unlink()
