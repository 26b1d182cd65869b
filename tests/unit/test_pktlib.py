"""Self-tests of the test oracle tests/pktlib.py against RFC examples (no core needed)."""
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pktlib as pl  # noqa: E402


def test_rfc1071_example():
    # RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert pl.ones_sum(data) == 0xDDF2
    assert pl.checksum(data) == 0x220D


def test_csum_diff():
    assert pl.csum_diff(0x1234, 0x1234) == 0
    assert pl.csum_diff(0x1239, 0x1234) == 5
    assert pl.csum_diff(0x0000, 0xFFFF) == 0


RFC6052_EXAMPLES = {  # RFC 6052 section 2.4, IPv4 192.0.2.33
    "2001:db8::/32": "2001:db8:c000:221::",
    "2001:db8:100::/40": "2001:db8:1c0:2:21::",
    "2001:db8:122::/48": "2001:db8:122:c000:2:2100::",
    "2001:db8:122:300::/56": "2001:db8:122:3c0:0:221::",
    "2001:db8:122:344::/64": "2001:db8:122:344:c0:2:2100:0",
    "2001:db8:122:344::/96": "2001:db8:122:344::c000:221",
    "64:ff9b::/96": "64:ff9b::c000:221",
}


@pytest.mark.parametrize("prefix", sorted(RFC6052_EXAMPLES))
def test_rfc6052_examples(prefix):
    addr = RFC6052_EXAMPLES[prefix]
    assert pl.embed(prefix, "192.0.2.33") == addr
    assert pl.extract(prefix, addr) == "192.0.2.33"


def test_build_parse_roundtrip_v6():
    pkt = pl.ipv6("2001:db8::1", "64:ff9b::c000:201", pl.udp(1000, 53, b"hello"),
                  exts=[pl.hbh(), pl.routing(1), pl.dstopts(), pl.frag(0x12345678)],
                  hlim=9, tc=0xb8, flow=0xabcde)
    p = pl.parse(pkt)
    assert (p.src, p.dst, p.proto, p.sport, p.dport) == (
        "2001:db8::1", "64:ff9b::c000:201", pl.UDP, 1000, 53)
    assert (p.hlim, p.tc, p.flow) == (9, 0xb8, 0xabcde)
    assert [k for k, _ in p.exts] == [pl.HOPOPT, pl.ROUTING, pl.DSTOPTS, pl.FRAGMENT]
    assert p.exts[1][1][3] == 1  # segments left
    assert p.frag == dict(ident=0x12345678, offset=0, mf=False)
    assert pl.valid(p) and p.payload == b"hello"


def test_build_parse_roundtrip_v4():
    pkt = pl.ipv4("192.0.2.1", "198.51.100.2", pl.tcp(1, 2, seq=3, payload=b"abc"),
                  df=True, ident=7, ttl=5, tos=3, options=pl.lsrr())
    p = pl.parse(pkt)
    assert (p.ident, p.df, p.mf, p.ttl, p.tos, p.ihl) == (7, True, False, 5, 3, 28)
    assert pl.ip_csum_ok(p) and pl.l4_csum_ok(p) and p.payload == b"abc"
    bad = pl.parse(pl.ipv4("192.0.2.1", "198.51.100.2", pl.udp(1, 2), hdr_csum_delta=1))
    assert not pl.ip_csum_ok(bad)


def test_icmp_errors_and_extensions():
    q = pl.ipv4("192.0.2.1", "198.51.100.2", pl.udp(1, 2, b"x" * 10))
    e = pl.parse(pl.ipv4("203.0.113.1", "192.0.2.1",
                         pl.icmp4_error(3, 4, q, mtu=1400, ext=pl.ext_structure())))
    assert (e.type, e.code, e.mtu, e.icmp_length) == (3, 4, 1400, 32)
    assert e.l4[5] == 32  # RFC 4884: sixth octet, 32-bit words
    assert e.inner.sport == 1 and pl.valid(e)
    assert pl.checksum(e.ext) == 0  # extension checksum valid
    q6 = pl.ipv6("64:ff9b::1", "2001:db8::1", pl.udp(1, 2, b"y"))
    e6 = pl.parse(pl.ipv6("2001:db8::9", "64:ff9b::1",
                          pl.icmp6_error(1, 4, q6, ext=pl.ext_structure())))
    assert e6.icmp_length == 16 and e6.l4[4] == 16  # 64-bit words, fifth octet
    assert e6.inner.dport == 2 and pl.valid(e6)
    pp = pl.parse(pl.ipv6("2001:db8::9", "64:ff9b::1", pl.icmp6_error(4, 0, q6, pointer=43)))
    assert pp.pointer == 43 and struct.unpack("!I", pp.l4[4:8])[0] == 43


def test_wrong_checksum_known_amount():
    p = pl.parse(pl.ipv6("2001:db8::1", "2001:db8::2", pl.udp(1, 2, b"q", csum_delta=9)))
    assert not pl.l4_csum_ok(p) and pl.csum_error(p) == 9


def test_reassemble6():
    full = pl.ipv6("2001:db8::1", "2001:db8::2", pl.udp(1, 2, bytes(100)))
    l4 = pl.parse(full).l4
    f1 = pl.ipv6("2001:db8::1", "2001:db8::2", pl.raw(pl.UDP, l4[:48]),
                 exts=[pl.frag(9, 0, True)])
    f2 = pl.ipv6("2001:db8::1", "2001:db8::2", pl.raw(pl.UDP, l4[48:]),
                 exts=[pl.frag(9, 48, False)])
    assert pl.reassemble6([f2, f1]) == full
