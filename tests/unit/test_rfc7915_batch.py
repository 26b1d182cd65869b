"""The Batch API gives the same results as translate() packet by packet."""
import ipaddress

import numpy as np

from _xlat import *  # noqa: F401,F403
from _xlat import (C_PORT, CLIENT6, P4_PORT, PEER4, PEER_PORT, POOL4, POOL6, Verdict, err4,
                   err6, make, pipeline, pl, udp4, udp6, v4, v6)


def mixed_inputs():
    """(packet, map_addr, map_port, partial) covering every verdict and output kind."""
    m6 = (POOL4, P4_PORT)
    m4 = (CLIENT6, C_PORT)
    pk = []
    pk.append((udp6(b"one"),) + m6)
    pk.append((udp4(b"two", df=True),) + m4)
    pk.append((v6(pl.tcp(C_PORT, PEER_PORT, flags=pl.SYN, payload=b"s")),) + m6)
    pk.append((v4(pl.icmp4_echo(P4_PORT, 1, b"e")),) + m4)
    pk.append((v6(pl.icmp6_echo(C_PORT, 2, b"e", reply=True)),) + m6)
    pk.append((udp6(hlim=1),) + m6)                                   # DROP_ICMP
    pk.append((udp4(ttl=1),) + m4)                                    # DROP_ICMP
    pk.append((v6(pl.udp(1, 2), dst="2001:db8:9::1"),) + m6)          # PASS
    pk.append((v6(pl.udp(1, 2), src=pl.embed(POOL6, "1.2.3.4")),) + m6)  # DROP
    pk.append((v4(pl.raw(132, b"\0" * 12)),) + m4)                   # PASS
    pk.append((udp4(bytes(3000), df=False, ident=99),) + m4)         # 3 fragments
    pk.append((err4(3, 4, mtu=1400),) + m4)
    pk.append((err6(1, 4),) + m6)
    pk.append((err6(4, 0, pointer=60),) + m6)                        # DROP
    pk.append((v6(pl.udp(C_PORT, PEER_PORT, b"x"), exts=[pl.hbh(), pl.routing(1)]),) + m6)
    pk.append((udp6(b"b" * 1500),) + m6)                              # PTB (IPv4 result > 1500)
    pk.append((udp6(b"csum", ),) + m6)
    pk.append((b"\x60" + b"\0" * 10,) + m6)                           # truncated garbage
    pk.append((b"\x45" + b"\0" * 10,) + m4)
    return [(p, a, port, False) for p, a, port in pk]


def test_batch_matches_translate():
    inputs = mixed_inputs()
    # partial-checksum inputs too
    l4 = pl.udp(C_PORT, PEER_PORT, b"partial")
    from _xlat import PEER6
    l4.csum = pl.ones_sum(pl.pseudo6(CLIENT6, PEER6, pl.UDP, len(l4.data)))
    inputs.append((v6(l4), POOL4, P4_PORT, True))

    t1 = make()
    expected = []
    for pkt, a, port, partial in inputs:
        v, reason, outs = t1.translate(pkt, a, port, partial_csum=partial)
        expected.append((int(v), int(reason), [(int(k), bytes(b)) for k, b in outs]))

    t2 = make()
    b = pipeline.Batch(capacity=64, in_bytes=64 * 2048, out_bytes=64 * 4096)
    b.clear()
    for pkt, a, port, partial in inputs:
        b.add(pkt, a, port, partial_csum=partial)
    done = t2.run(b)
    assert done == len(inputs)
    got_outs = [[] for _ in inputs]
    for j in range(b.out_count):
        got_outs[int(b.out_input[j])].append((int(b.out_kind[j]), bytes(b.output(j))))
    for i in range(len(inputs)):
        assert (int(b.verdict[i]), int(b.reason[i]), got_outs[i]) == expected[i], i
    assert np.array_equal(np.asarray(t1.counters), np.asarray(t2.counters))
    assert pipeline.bounds_violations() == 0
    # sanity: the mix really exercised every verdict
    assert {e[0] for e in expected} >= {int(Verdict.TRANSLATED), int(Verdict.DROP),
                                         int(Verdict.DROP_ICMP), int(Verdict.PASS)}


def test_batch_filled_through_arrays():
    inputs = mixed_inputs()[:6]
    t1, t2 = make(), make()
    b = pipeline.Batch(capacity=16, in_bytes=16 * 2048, out_bytes=16 * 4096)
    b.clear()
    off = 0
    for i, (pkt, a, port, _) in enumerate(inputs):
        b.input[off:off + len(pkt)] = np.frombuffer(pkt, dtype=np.uint8)
        b.in_offset[i] = off
        b.in_length[i] = len(pkt)
        b.in_flags[i] = 0
        ab = ipaddress.ip_address(a).packed
        b.map_addr[i, :] = 0
        b.map_addr[i, :len(ab)] = np.frombuffer(ab, dtype=np.uint8)
        b.map_port[i] = port
        off += len(pkt) + 7  # unaligned gaps on purpose
    b.count = len(inputs)
    assert t2.run(b) == len(inputs)
    got = [[] for _ in inputs]
    for j in range(b.out_count):
        got[int(b.out_input[j])].append((int(b.out_kind[j]), bytes(b.output(j))))
    for i, (pkt, a, port, _) in enumerate(inputs):
        v, reason, outs = t1.translate(pkt, a, port)
        assert int(b.verdict[i]) == int(v) and int(b.reason[i]) == int(reason), i
        assert got[i] == [(int(k), bytes(x)) for k, x in outs], i


def test_batch_out_bytes_exhausted_stops_early():
    t = make()
    b = pipeline.Batch(capacity=64, in_bytes=64 * 2048, out_bytes=3000)
    b.clear()
    for _ in range(10):
        b.add(udp6(b"z" * 1000), POOL4, P4_PORT)
    done = t.run(b)
    assert 1 <= done < 10
    assert b.out_count == done
    for j in range(b.out_count):
        p = pl.parse(b.output(j))
        assert p.dst == PEER4 and pl.valid(p)
