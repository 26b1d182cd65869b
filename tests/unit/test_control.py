"""The control plane without sockets: instances, atomic changes, the configuration
block the workers read."""

import pytest

from jool._fast.pipeline import Verdict
from jool._fast.tables import Tables
from jool.control.configblock import ConfigBlock, build_translator
from jool.control.instance import Instance, instance_from_file
from jool.control.protocol import ControlError
from jool.config import atomic
import pktlib as pl


@pytest.fixture
def inst():
    i = Instance.create("t1", "netfilter", "64:ff9b::/96", netns=1, capacity=1024)
    yield i
    i.close()


def snapshot(i):
    return (i.global_display(), [i.pool4_display(p) for p in ("tcp", "udp", "icmp")],
            [i.bib_display(p) for p in ("tcp", "udp", "icmp")], i.config.generation)


def test_every_change_publishes_a_new_generation(inst):
    g0 = inst.config.generation
    assert g0 and g0 % 2 == 0
    inst.pool4_add("udp", "192.0.2.2/32", 1, 3000)
    g1 = inst.config.generation
    inst.global_update("udp-timeout", "0:10:00")
    g2 = inst.config.generation
    assert g0 < g1 < g2
    gen, doc = ConfigBlock.attach(inst.config.name).read()
    assert gen == g2
    assert doc["translator"]["udp_timeout"] == 600_000
    assert doc["pool4"][0]["entries"] == [["192.0.2.2", 1, 3000]]


def test_a_rejected_change_changes_nothing(inst):
    inst.pool4_add("udp", "192.0.2.2/32", 1, 3000)
    inst.bib_add("udp", "2001:db8::5", 2000, "192.0.2.2", 2000)
    before = snapshot(inst)
    for bad in (lambda: inst.global_update("udp-timeout", "0:00:10"),
                lambda: inst.global_update("pool6", "2001:db8:64::/96"),
                lambda: inst.global_update("f-args", 16),
                lambda: inst.bib_add("udp", "2001:db8::6", 2000, "192.0.2.2", 2000),
                lambda: inst.bib_add("udp", "2001:db8::6", 5000, "192.0.2.9", 5000),
                lambda: inst.pool4_add("tcp", "192.0.2.1/24", 1, 2),
                lambda: inst.bib_remove("udp", "2001:db8::99", 1)):
        with pytest.raises(ControlError) as exc:
            bad()
        assert exc.value.status in (3, 17, 22)
        assert snapshot(inst) == before


def test_atomic_file_with_one_bad_entry_changes_nothing(inst):
    inst.apply_file(atomic.loads('''{"instance": "t1", "framework": "netfilter",
        "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:07:00"},
        "pool4": [{"protocol": "UDP", "prefix": "192.0.2.2", "port range": "1-3000"}]}'''))
    before = snapshot(inst)
    bad = atomic.loads('''{"instance": "t1", "framework": "netfilter",
        "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:09:00"},
        "pool4": [{"protocol": "UDP", "prefix": "192.0.2.2", "port range": "1-3000"},
                  {"protocol": "TCP", "prefix": "192.0.2.1/30"}]}''')     # host bits
    with pytest.raises(ControlError) as exc:
        inst.apply_file(bad)
    assert exc.value.status == 22
    assert snapshot(inst) == before
    assert dict(inst.global_display())["udp-timeout"] == "0:07:00"


def test_file_creates_an_instance_with_its_static_bib():
    doc = atomic.loads('''{"instance": "t2", "framework": "iptables",
        "global": {"pool6": "64:ff9b::/96"},
        "pool4": [{"protocol": "TCP", "prefix": "192.0.2.2", "port range": "1-3000"}],
        "bib": [{"protocol": "TCP", "ipv6 address": "2001:db8::5#2000",
                 "ipv4 address": "192.0.2.2#2000"}]}''')
    i = instance_from_file(doc, netns=1, capacity=1024)
    try:
        assert i.bib_display("tcp") == [["2001:db8::5", 2000, "192.0.2.2", 2000, True]]
    finally:
        i.close()


def test_a_worker_translates_like_the_control_process(inst):
    """The published document rebuilds an equivalent Translator on the same tables."""
    inst.pool4_add("udp", "192.0.2.2/32", 1, 3000)
    inst.global_update("zeroize-traffic-class", True)
    _, doc = ConfigBlock.attach(inst.config.name).read()
    tables = Tables.attach(doc["tables"])
    try:
        worker = build_translator(doc, tables)
        pkt = pl.ipv6("2001:db8::5", "64:ff9b::198.51.100.7", pl.udp(4000, 53, b"q"))
        v, _, out = worker.translate(pkt, now_ms=100)
        assert v == Verdict.TRANSLATED
        # The session the worker created is the control process's too.
        sessions = inst.translator.sessions("udp", 100)
        assert len(sessions) == 1 and sessions[0]["src6"] == "2001:db8::5"
        reply = pl.ipv4("198.51.100.7", sessions[0]["src4"],
                        pl.udp(53, sessions[0]["sport4"], b"a"), tos=0x20)
        v, _, out = inst.translator.translate(reply, now_ms=200)
        assert v == Verdict.TRANSLATED and pl.parse(out[0][1]).tc == 0
    finally:
        tables.close()
