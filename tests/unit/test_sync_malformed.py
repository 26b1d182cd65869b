"""Malformed sync input at the control process (jool/sync/instance_sync.py,
issue 8): bad datagrams and bad joold frames are counted and dropped, nothing
raises, and the tables stay consistent whatever well-framed records say."""

import base64
import gc
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from _nat64 import Nat64, Tables

pytest.importorskip("jool._fast.sync")
from jool.control.counters import SLOTS  # noqa: E402
from jool.sync import wire  # noqa: E402
from jool.sync.instance_sync import SLOT, InstanceSync  # noqa: E402
from jool.sync.link import FrameLink  # noqa: E402

T0 = 1_000_000
GOOD_SRC6 = bytes.fromhex("20010db8" + "00" * 11 + "10")


def good_records(n, first_port=1000):
    r = wire.empty(n)
    for i in range(n):
        r[i]["src6"] = GOOD_SRC6
        r[i]["src6_port"] = first_port + i
        r[i]["dst6"] = bytes.fromhex("0064ff9b" + "00" * 8 + "c6336407")     # 198.51.100.7
        r[i]["dst6_port"] = 80
        r[i]["src4"] = bytes([192, 0, 2, 2])
        r[i]["src4_port"] = first_port + i
        r[i]["dst4"] = bytes([198, 51, 100, 7])
        r[i]["dst4_port"] = 80
        r[i]["proto"] = wire.PROTO_UDP
        r[i]["expires"] = 60_000
    return r


class Receiver:
    def __init__(self, tables):
        self.tables = tables
        self.nat = Nat64(tables)
        self.values = {"ss-enabled": True, "pool6": "64:ff9b::/96", "ss-flush-asap": True,
                       "ss-flush-deadline": 2000, "ss-capacity": 512, "ss-max-payload": 1452}
        self.counters = np.zeros(SLOTS, np.uint64)
        self.node = InstanceSync(tables, self.counters, self.values, self.nat.t.options.copy)
        self.mine, self.theirs = socket.socketpair()
        self.node.attach(FrameLink(self.mine))

    def count(self, name):
        return int(self.counters[SLOT[name]])

    def add(self, *datagrams, **fields):
        frame = {"type": "add", "datagrams": [base64.b64encode(d).decode() for d in datagrams]}
        frame.update(fields)
        self.node.on_frame(frame, T0)

    def close(self):
        self.nat.close()
        self.mine.close()
        self.theirs.close()


@pytest.fixture
def rx():
    tables = Tables.create(capacity=4096)
    receiver = Receiver(tables)
    yield receiver
    receiver.close()
    gc.collect()
    assert tables.check() == []
    tables.close()
    tables.unlink()


def one_good():
    return wire.encode(good_records(1))


def bad_header():
    data = bytearray(one_good())
    data[4] ^= 0x10
    return bytes(data)


def bad_protocol():
    data = bytearray(one_good())
    data[112] = 9
    return bytes(data)


@pytest.mark.parametrize("datagram, rejected, installed", [
    (b"", 0, 0),                                # no record at all
    (one_good()[:100], 1, 0),                   # truncated inside the first record
    (one_good() + b"\0" * 50, 1, 1),            # a cut tail: skipped, as 4.1.9 does
    (bad_header(), 1, 0),
    (bad_protocol(), 1, 0),
    (bytes(range(256)) * 4, 8, 0),              # random bytes: 7 "records" and a tail
    (b"\xff" * 3000, 15, 0),                    # oversized: 14 cut at 2048, and the tail
])
def test_malformed_datagram_counted_and_its_bad_part_dropped(rx, datagram, rejected,
                                                             installed):
    rx.add(datagram)
    assert rx.count("JOOL_SS_MALFORMED") == 1
    assert rx.count("JOOL_SS_REJECTED") == rejected
    assert rx.count("JOOL_SS_INSTALLED") == installed
    rx.add(wire.encode(good_records(1, first_port=2000)))   # the next good one goes in
    assert rx.count("JOOL_SS_INSTALLED") == installed + 1
    assert rx.count("JOOL_SS_MALFORMED") == 1


def test_good_records_beside_a_bad_one_installed_as_4_1_9_does(rx):
    rx.add(wire.encode(good_records(2)) + bad_protocol())
    assert rx.count("JOOL_SS_INSTALLED") == 2
    assert rx.count("JOOL_SS_REJECTED") == 1 and rx.count("JOOL_SS_MALFORMED") == 1


@pytest.mark.parametrize("frame", [
    {"type": "add", "datagrams": "not a list"},
    {"type": "add", "datagrams": 7},
    {"type": "add", "datagrams": [12]},
    {"type": "add", "datagrams": ["!!not base64!!"]},
    {"type": "add", "datagrams": [], "lost": "three"},
    {"type": "add", "datagrams": [], "forged": -1},
    {"type": "add", "datagrams": [], "unsigned": True},
    {"type": "add", "datagrams": [], "replayed": 1 << 40},
    {"type": "ack", "failed": [1]},
    {"type": "who knows"},
    {},
])
def test_malformed_frame_counted_once(rx, frame):
    rx.node.on_frame(frame, T0)
    assert rx.count("JOOL_SS_MALFORMED") == 1
    assert rx.count("JOOL_SS_INSTALLED") == 0


def test_daemon_drop_counts_are_added(rx):
    rx.add(one_good(), lost=1, unsigned=2, forged=3, replayed=4, malformed=5)
    assert [rx.count(n) for n in ("JOOL_SS_LOST_DATAGRAMS", "JOOL_SS_UNSIGNED",
                                  "JOOL_SS_FORGED", "JOOL_SS_REPLAYED",
                                  "JOOL_SS_MALFORMED", "JOOL_SS_INSTALLED")] == [1, 2, 3, 4, 5, 1]


def test_an_unexpected_failure_is_counted_not_raised(rx, monkeypatch):
    def broken(*_args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(rx.node, "receive", broken)
    rx.add(one_good())
    assert rx.count("JOOL_SS_MALFORMED") == 1


FRAMES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)


@given(kind=st.sampled_from(["add", "ack", "sync", ""]),
       fields=st.dictionaries(st.sampled_from(["datagrams", "lost", "failed", "forged",
                                               "unsigned", "replayed", "malformed", "seq"]),
                              FRAMES, max_size=4))
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_frame_is_survived(rx, kind, fields):
    rx.node.on_frame(dict(fields, type=kind), T0)


# Records with valid attribute headers and anything in their fields: the
# install kernel must keep the tables consistent (the fixture checks them).
FIELDS = st.tuples(st.binary(min_size=16, max_size=16), st.integers(0, 65535),
                   st.binary(min_size=16, max_size=16), st.integers(0, 65535),
                   st.binary(min_size=4, max_size=4), st.integers(0, 65535),
                   st.binary(min_size=4, max_size=4), st.integers(0, 65535),
                   st.integers(0, 2), st.integers(0, 6), st.integers(0, 2),
                   st.integers(0, 2**32 - 1))


@given(st.lists(FIELDS, min_size=1, max_size=14))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_well_framed_records_with_any_fields_never_break_the_tables(rx, rows):
    r = wire.empty(len(rows))
    names = ("src6", "src6_port", "dst6", "dst6_port", "src4", "src4_port", "dst4",
             "dst4_port", "proto", "state", "timer", "expires")
    for i, row in enumerate(rows):
        for name, value in zip(names, row):
            r[i][name] = value
    rx.add(wire.encode(r))
    assert rx.count("JOOL_SS_MALFORMED") == 0
    assert rx.tables.check() == []
