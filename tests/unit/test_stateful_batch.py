"""Translator.run(batch, now_ms) with tables must do exactly what one translate() per
packet does, even when packets of a batch create the sessions later packets of the
same batch use (the batch path looks flows up ahead of processing)."""
import gc

import pytest

from _nat64 import Nat64, POOL4, Tables, pipeline, pl, tcp4, tcp6, udp4, udp6

SYN, ACK, FIN, RST = pl.SYN, pl.ACK, pl.FIN, pl.RST
NOW = 90_000
N_CLIENTS = 24


def client(k):
    return "2001:db8::%x" % (0x100 + k)


def conversation(k):
    """The packets of client k, in order. Static BIB port 100 + k (TCP) / 200 + k (UDP)."""
    c, tp, up = client(k), 100 + k, 200 + k
    return [
        tcp6(SYN, src=c, sport=1000 + k),
        tcp4(SYN | ACK, tp),
        tcp6(ACK, src=c, sport=1000 + k, payload=b"GET /"),
        udp6(src=c, sport=2000 + k, payload=b"dns?"),
        tcp4(ACK, tp, payload=b"200 OK"),
        udp4(up, payload=b"dns!"),
        tcp4(FIN | ACK, tp),
        tcp6(FIN | ACK, src=c, sport=1000 + k),
        tcp4(ACK, tp),
        udp4(up, src="203.0.113.77", sport=5353, payload=b"other peer"),
    ]


def interleaved():
    convs = [conversation(k) for k in range(N_CLIENTS)]
    out = []
    for i in range(max(len(c) for c in convs)):
        for c in convs:
            if i < len(c):
                out.append(c[i])
    return out


def setup(nat):
    for k in range(N_CLIENTS):
        nat.t.bib_add("tcp", client(k), 1000 + k, POOL4, 100 + k)
        nat.t.bib_add("udp", client(k), 2000 + k, POOL4, 200 + k)


def normalised(raw):
    """Output bytes with the IPv4 identification and header checksum zeroed (the
    identification is the host's choice)."""
    b = bytearray(raw)
    if b[0] >> 4 == 4:
        b[4:6] = b"\0\0"
        b[10:12] = b"\0\0"
    return bytes(b)


def sessions_of(nat):
    rows = []
    for proto in ("tcp", "udp"):
        for s in nat.sessions(proto, NOW):
            rows.append((s.src6, s.sport6, s.dst6, s.dport6, s.src4, s.sport4, s.dst4,
                         s.dport4, s.state, s.expires_in_ms))
    return sorted(rows)


@pytest.fixture
def two():
    made = []
    for _ in range(2):
        tb = Tables.create(capacity=4096)
        made.append((tb, Nat64(tb)))
    yield [n for _, n in made]
    for tb, n in made:
        n.close()
    gc.collect()
    for tb, n in made:
        try:
            assert tb.check() == []
            tb.close()
        finally:
            tb.unlink()


# Lengths around the batch prefetch's groups of 8 (run_batch): a partial first,
# second or last group, and the whole conversation.
@pytest.mark.parametrize("length", [1, 7, 9, 16, 17, 23, 25, 101, None])
def test_batch_equals_one_by_one(two, length):
    a, b = two
    setup(a)
    setup(b)
    pkts = interleaved()[:length]
    assert length is not None or len(pkts) > 64
    # One by one.
    singles = []
    for p in pkts:
        v, r, outs = a.t.translate(p, now_ms=NOW)
        singles.append((int(v), r, [(int(k), normalised(o)) for k, o in outs]))
    # One batch.
    batch = pipeline.Batch(capacity=len(pkts), in_bytes=len(pkts) * 256,
                           out_bytes=len(pkts) * 512)
    for p in pkts:
        batch.add(p)
    batch.count = len(pkts)
    done = b.t.run(batch, NOW)
    assert done == len(pkts)
    batched = []
    for i in range(len(pkts)):
        outs = [(int(k), normalised(o)) for k, o in batch.outputs_of(i)]
        batched.append((int(batch.verdict[i]), int(batch.reason[i]), outs))
    for i, (x, y) in enumerate(zip(singles, batched)):
        assert x == y, "packet %d (%s) differs" % (i, pl.parse(pkts[i]))
    assert sessions_of(a) == sessions_of(b)
    assert [int(x) for x in a.t.counters] == [int(x) for x in b.t.counters]
    # And the outcome is the expected one: every packet translated.
    assert all(v == int(pipeline.Verdict.TRANSLATED) for v, _, _ in batched)
    if length is not None:
        return
    states = {s[8] for s in sessions_of(b) if s[8] is not None}
    assert states == {"V4_FIN_V6_FIN_RCV"}
    assert b.gauges() == (2 * N_CLIENTS, 3 * N_CLIENTS)


def test_batch_session_created_and_used_in_same_batch(two):
    """Dynamic mapping: the IPv6 packet creates the BIB entry; the next IPv6 packet
    of the same batch to another peer must reuse it (endpoint-independent)."""
    nat = two[0]
    batch = pipeline.Batch(capacity=8)
    batch.add(udp6(sport=4000, payload=b"a"))
    batch.add(udp6(sport=4000, dst=pl.embed("64:ff9b::/96", "203.0.113.5"), payload=b"b"))
    batch.add(udp6(sport=4000, payload=b"c"))
    batch.count = 3
    assert nat.t.run(batch, NOW) == 3
    ports = set()
    for i in range(3):
        assert int(batch.verdict[i]) == int(pipeline.Verdict.TRANSLATED)
        [(k, raw)] = batch.outputs_of(i)
        p = pl.parse(raw)
        ports.add((p.src, p.sport))
    assert len(ports) == 1
    assert len(nat.bib("udp")) == 1 and len(nat.sessions("udp", NOW)) == 2
    [(_, _, a4, p4, static)] = nat.bib("udp")
    assert (a4, p4) == ports.pop() and not static
