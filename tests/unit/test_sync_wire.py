"""The session-synchronization wire format against spec/joold.md §4, byte by byte."""

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jool.sync import wire

# spec/joold.md §4.3's example: an ICMP session, little-endian host, kernel >= 5.2.
SPEC_EXAMPLE = bytes.fromhex(
    "8c000180200001801400010020010db8"
    "00000000000000000000000806000200"
    "c7160000200002801400010000 64ff9b".replace(" ", "")
    + "0000000000000000c000020806000200"
    "c716000014000380080001 00c0000201".replace(" ", "")
    + "06000200c71600001400048008000100"
    "c000020806000200c716000005000500"
    "02000000050006000000000005000700"
    "0000000008000800 78e60000".replace(" ", ""))


def example_record():
    r = wire.empty(1)
    r["src6"] = ipaddress.IPv6Address("2001:db8::8").packed
    r["dst6"] = ipaddress.IPv6Address("64:ff9b::c000:208").packed
    r["src4"] = ipaddress.IPv4Address("192.0.2.1").packed
    r["dst4"] = ipaddress.IPv4Address("192.0.2.8").packed
    for port in ("src6_port", "dst6_port", "src4_port", "dst4_port"):
        r[port] = 5831
    r["proto"] = wire.PROTO_ICMP
    r["expires"] = 59000
    return r


def test_spec_example_is_140_bytes():
    assert len(SPEC_EXAMPLE) == wire.RECORD_SIZE


def test_encode_matches_the_spec_example_byte_for_byte():
    assert wire.encode(example_record()) == SPEC_EXAMPLE


def test_decode_reads_the_spec_example():
    records, rejected = wire.decode(SPEC_EXAMPLE)
    assert rejected == 0 and len(records) == 1
    r = records[0]
    assert bytes(r["src6"]) == ipaddress.IPv6Address("2001:db8::8").packed
    assert bytes(r["dst4"]) == ipaddress.IPv4Address("192.0.2.8").packed
    assert int(r["src4_port"]) == 5831 and int(r["expires"]) == 59000
    assert int(r["proto"]) == wire.PROTO_ICMP


def test_records_without_the_nested_flag_are_read_too():
    """Older kernels (< 5.2) send the containers without NLA_F_NESTED."""
    plain = wire.encode(example_record(), nested_flag=False)
    assert plain[3] == 0x00 and plain != SPEC_EXAMPLE
    records, rejected = wire.decode(plain)
    assert rejected == 0 and len(records) == 1


def test_a_datagram_is_just_records():
    many = np.concatenate([example_record()] * 14)
    data = wire.encode(many)
    assert len(data) == 14 * 140 == 1960
    records, rejected = wire.decode(data)
    assert len(records) == 14 and rejected == 0


def test_a_receiver_reads_2048_bytes_at_most():
    data = wire.encode(np.concatenate([example_record()] * 16))       # 2240 bytes
    records, rejected = wire.decode(data)
    assert len(records) == 14 and rejected == 1     # the 15th is cut at 2048


@pytest.mark.parametrize("offset, value", [
    (0, 0x8b), (4, 0x21), (10, 0x05), (28, 0x07), (110, 0x09), (132, 0x04),
    (112, 3), (120, 7), (128, 3),
])
def test_malformed_record_is_rejected_and_counted(offset, value):
    bad = bytearray(SPEC_EXAMPLE)
    bad[offset] = value
    records, rejected = wire.decode(bytes(bad) + SPEC_EXAMPLE)
    assert len(records) == 1 and rejected == 1


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_decode_never_raises(data):
    records, rejected = wire.decode(data)
    assert len(records) + rejected >= min(len(data), 2048) // 140


@given(st.lists(st.tuples(st.binary(min_size=16, max_size=16), st.integers(0, 65535),
                          st.binary(min_size=4, max_size=4), st.integers(0, 65535),
                          st.integers(0, 2), st.integers(0, 6), st.integers(0, 2),
                          st.integers(0, 2**32 - 1)), min_size=1, max_size=14))
@settings(max_examples=200, deadline=None)
def test_round_trip(rows):
    r = wire.empty(len(rows))
    for i, (a6, p6, a4, p4, proto, state, timer, expires) in enumerate(rows):
        r[i]["src6"], r[i]["src6_port"], r[i]["src4"], r[i]["src4_port"] = a6, p6, a4, p4
        r[i]["dst6"], r[i]["dst6_port"], r[i]["dst4"], r[i]["dst4_port"] = a6[::-1], p4, a4[::-1], p6
        r[i]["proto"], r[i]["state"], r[i]["timer"], r[i]["expires"] = proto, state, timer, expires
    back, rejected = wire.decode(wire.encode(r))
    assert rejected == 0
    for name in wire.RECORD.names:
        assert back[name].tolist() == r[name].tolist(), name


def test_records_per_datagram():
    assert wire.records_per_datagram(1452) == 10
    assert wire.records_per_datagram(0) == 1
    assert wire.records_per_datagram(65535) == 14
