"""TCP super-frames (GSO/GRO aggregates longer than their link's MTU) are emitted
as MTU-sized segments (DESIGN.md: veth hands them over whole)."""

import pytest

import pktlib as pl
from jool._fast.pipeline import OutKind, Translator, Verdict

CLIENT6, PEER4, POOL4 = "2001:db8::5", "198.51.100.7", "192.0.2.2"
PEER6 = "64:ff9b::198.51.100.7"


def segments(outputs):
    return [pl.parse(b) for _, b in outputs]


@pytest.mark.parametrize("partial", [False, True])
def test_6to4_super_frame_is_segmented(partial):
    t = Translator(mtu6_in=1500, mtu4_out=1500)
    payload = bytes(range(256)) * 40                  # 10240 bytes
    frame = pl.ipv6(CLIENT6, PEER6, pl.tcp(40000, 443, seq=1000, flags=pl.ACK | 0x08 | pl.FIN,
                                           payload=payload))
    verdict, _, outs = t.translate(frame, POOL4, 2000, partial_csum=partial)
    assert verdict == Verdict.TRANSLATED
    segs = segments(outs)
    assert all(k == OutKind.IPV4 for k, _ in outs)
    assert all(len(s.raw) <= 1500 for s in segs) and len(segs) == 8
    assert b"".join(s.payload for s in segs) == payload
    seq = 1000
    for i, s in enumerate(segs):
        assert (s.src, s.dst, s.sport, s.dport) == (POOL4, PEER4, 2000, 443)
        assert s.seq == seq
        seq += len(s.payload)
        assert pl.ip_csum_ok(s) and pl.l4_csum_ok(s)
        last = i == len(segs) - 1
        assert bool(s.flags & pl.FIN) == last and bool(s.flags & 0x08) == last
        assert s.flags & pl.ACK


def test_4to6_tso_aggregate_is_segmented():
    t = Translator(mtu4_in=1500, mtu6_out=1500)
    payload = b"z" * 6000
    frame = pl.ipv4(PEER4, POOL4, pl.tcp(443, 2000, seq=7, flags=pl.ACK, payload=payload), df=True)
    verdict, _, outs = t.translate(frame, CLIENT6, 40000, partial_csum=True)
    assert verdict == Verdict.TRANSLATED
    segs = segments(outs)
    assert all(len(s.raw) <= 1500 for s in segs) and len(segs) == 5
    assert b"".join(s.payload for s in segs) == payload
    assert [s.seq for s in segs] == [7 + i * 1440 for i in range(5)]
    assert all(s.dst == CLIENT6 and s.dport == 40000 and pl.l4_csum_ok(s) for s in segs)


def test_4to6_reassembled_df0_packet_is_fragmented_not_segmented():
    t = Translator(mtu4_in=1500, mtu6_out=1500)
    frame = pl.ipv4(PEER4, POOL4, pl.tcp(443, 2000, flags=pl.ACK, payload=b"y" * 3000), df=False)
    verdict, _, outs = t.translate(frame, CLIENT6, 40000)
    assert verdict == Verdict.TRANSLATED
    assert len(outs) == 3 and all(pl.parse(b).frag is not None for _, b in outs)   # fragments


def test_a_frame_within_the_mtu_is_left_whole():
    t = Translator(mtu6_in=9000, mtu4_out=9000)
    frame = pl.ipv6(CLIENT6, PEER6, pl.tcp(40000, 443, flags=pl.ACK, payload=b"x" * 5000))
    verdict, _, outs = t.translate(frame, POOL4, 2000)
    assert verdict == Verdict.TRANSLATED and len(outs) == 1


# ---------------------------------------------------------------- left whole (GSO)

def run_gso(t, frame, addr, port, gso_size, partial=True):
    from jool._fast.pipeline import Batch
    b = Batch(4, 1 << 17, 1 << 18)
    b.add(frame, addr, port, partial_csum=partial, gso_size=gso_size)
    t.run(b, 0, gso=True)
    return [(OutKind(int(b.out_kind[j])), b.output(j), int(b.out_gso[j]))
            for j in range(b.out_count)]


def finished(raw, ip_header):
    """The packet as the kernel's segmentation would checksum it: the TCP field
    holds the pseudo-header sum, so the complement of the sum of the whole segment
    from there is the checksum."""
    raw = bytearray(raw)
    acc = 0
    for i in range(ip_header, len(raw) - 1, 2):
        acc += raw[i] << 8 | raw[i + 1]
    if (len(raw) - ip_header) % 2:
        acc += raw[-1] << 8
    while acc >> 16:
        acc = (acc & 0xffff) + (acc >> 16)
    csum = ~acc & 0xffff
    raw[ip_header + 16:ip_header + 18] = csum.to_bytes(2, "big")
    return bytes(raw)


@pytest.mark.parametrize("mtu4, expected_mss", [(1500, 1428), (1300, 1260)])
def test_6to4_super_frame_leaves_whole(mtu4, expected_mss):
    t = Translator(mtu6_in=1500, mtu4_out=mtu4)
    payload = bytes(range(256)) * 40
    frame = pl.ipv6(CLIENT6, PEER6, pl.tcp(40000, 443, seq=1000, flags=pl.ACK | 0x08,
                                           payload=payload))
    [(kind, raw, mss)] = run_gso(t, frame, POOL4, 2000, 1428)
    assert kind == OutKind.GSO_IPV4 and mss == expected_mss
    p = pl.parse(finished(raw, 20))
    assert (p.src, p.dst, p.sport, p.dport, p.seq) == (POOL4, PEER4, 2000, 443, 1000)
    assert p.payload == payload and len(raw) == 20 + 20 + len(payload)
    assert pl.ip_csum_ok(p) and pl.l4_csum_ok(p)
    assert p.df


def test_4to6_super_frame_leaves_whole():
    t = Translator(mtu4_in=1500, mtu6_out=1500)
    payload = b"z" * 30000
    frame = pl.ipv4(PEER4, POOL4, pl.tcp(443, 2000, seq=7, flags=pl.ACK, payload=payload),
                    df=True)
    [(kind, raw, mss)] = run_gso(t, frame, CLIENT6, 40000, 1448)
    assert kind == OutKind.GSO_IPV6 and mss == 1440          # 1500 - 40 - 20
    p = pl.parse(finished(raw, 40))
    assert (p.dst, p.dport, p.seq) == (CLIENT6, 40000, 7)
    assert p.payload == payload and pl.l4_csum_ok(p)


def test_without_gso_egress_a_super_frame_is_still_cut():
    t = Translator(mtu6_in=1500, mtu4_out=1500)
    frame = pl.ipv6(CLIENT6, PEER6, pl.tcp(40000, 443, flags=pl.ACK, payload=b"q" * 5000))
    from jool._fast.pipeline import Batch
    b = Batch(4, 1 << 17, 1 << 18)
    b.add(frame, POOL4, 2000, partial_csum=True, gso_size=1428)
    t.run(b, 0)                                              # gso=False
    kinds = {int(b.out_kind[j]) for j in range(b.out_count)}
    assert kinds == {int(OutKind.IPV4)} and b.out_count == 4
