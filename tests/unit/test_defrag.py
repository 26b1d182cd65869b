"""IPv6 reassembly in front of the stateful core (jool/_fast/defrag.pyx)."""

import random

import pytest

import pktlib as pl
from jool._fast.defrag import Reassembler
from jool._fast.pipeline import Translator, Verdict

SRC, DST = "2001:db8::5", "64:ff9b::198.51.100.7"


def datagram(size=4000, sport=5000):
    return pl.ipv6(SRC, DST, pl.udp(sport, 53, bytes(random.Random(size).randrange(256)
                                                     for _ in range(size))))


def fragments(packet, chunk=1232, ident=0x1234):
    """The packet's fragmentable part cut as an IPv6 sender would (RFC 8200 §4.5)."""
    header, body = packet[:40], packet[40:]
    out = []
    for off in range(0, len(body), chunk):
        piece = body[off:off + chunk]
        more = off + chunk < len(body)
        frag = bytes([packet[6], 0]) + ((off & 0xFFF8) | more).to_bytes(2, "big") \
            + ident.to_bytes(4, "big")
        hdr = bytearray(header)
        hdr[4:6] = (8 + len(piece)).to_bytes(2, "big")
        hdr[6] = 44
        out.append(bytes(hdr) + frag + piece)
    return out


@pytest.mark.parametrize("order", ["in", "reversed", "shuffled"])
def test_reassembles_in_any_order(order):
    packet = datagram()
    frags = fragments(packet)
    if order == "reversed":
        frags.reverse()
    elif order == "shuffled":
        random.Random(3).shuffle(frags)
    r = Reassembler()
    results = [r.feed(f) for f in frags]
    assert results[:-1] == [b""] * (len(frags) - 1)
    assert results[-1] == packet
    assert r.stats["completed"] == 1


def test_overlap_discards_the_datagram():
    packet = datagram()
    frags = fragments(packet)
    r = Reassembler()
    assert r.feed(frags[0]) == b""
    assert r.feed(frags[0]) == b""          # the same piece again overlaps (RFC 5722)
    assert r.stats["discarded"] == 1
    assert [r.feed(f) for f in frags[1:]] == [b""] * (len(frags) - 1)


def test_interleaved_datagrams_and_timeout():
    a, b = datagram(3000, 1), datagram(3500, 2)
    fa, fb = fragments(a, ident=1), fragments(b, ident=2)
    r = Reassembler(slots=4)
    out = [r.feed(x, now=10) for pair in zip(fa, fb) for x in pair] + \
          [r.feed(x, now=10) for x in (fa + fb)[2 * min(len(fa), len(fb)):]]
    assert a in out and b in out
    r.feed(fa[0], now=100)
    assert r.feed(fa[1], now=100 + 60_000) == b""      # the first piece was forgotten
    assert r.stats["discarded"] >= 1


def test_not_fragments_and_atomic_fragments_pass():
    r = Reassembler()
    assert r.feed(datagram(100)) is None
    assert r.feed(fragments(datagram(100), chunk=4096)[0]) is None    # offset 0, M=0


def test_reassembled_datagram_translates_whole():
    packet = datagram(4000)
    whole = None
    r = Reassembler()
    for f in fragments(packet):
        whole = r.feed(f) or whole
    v, _, outs = Translator(mtu4_out=9000).translate(whole, "192.0.2.2", 2000)
    assert v == Verdict.TRANSLATED
    out = pl.parse(outs[0][1])
    assert out.sport == 2000 and len(out.payload) == 4000 and pl.l4_csum_ok(out)


def test_reassembled_datagram_too_big_for_ipv4_is_fragmented():
    """RFC 7915 §5.1: it had a fragment header, so DF=0; the translator fragments
    it for the IPv4 next hop (the kernel did that for Jool)."""
    packet = datagram(4000)
    t = Translator(mtu4_out=1500)
    v, _, outs = t.translate(packet, "192.0.2.2", 2000, reassembled=True)
    assert v == Verdict.TRANSLATED and len(outs) == 3
    frags = [pl.parse(b) for _, b in outs]
    assert all(len(f.raw) <= 1500 and not f.df and pl.ip_csum_ok(f) for f in frags)
    assert len({f.ident for f in frags}) == 1
    assert [f.mf for f in frags] == [True, True, False]
    body = b"".join(f.raw[20:] for f in frags)
    assert len(body) == 8 + 4000
    assert body[:2] == (2000).to_bytes(2, "big")
    # Not reassembled: the same size gets a Packet Too Big as the spec says.
    v, reason, outs = t.translate(packet, "192.0.2.2", 2000)
    assert v == Verdict.DROP_ICMP and outs[0][0] == 0x16
