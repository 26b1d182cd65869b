"""The OpenMetrics text (jool/control/metrics.py) of a real instance, without
sockets: parsed by prometheus_client's OpenMetrics parser, its counters checked
against `stats display`'s."""

import socket

import pytest

from jool._fast.stats import COUNTER_NAMES, DATAPLANE_COUNTER_NAMES, SYNC_COUNTER_NAMES
from jool.control.counters import SLOTS
from jool.control import metrics
from jool.control.counters import GAUGES
from jool.control.instance import Instance

parser = pytest.importorskip("prometheus_client.openmetrics.parser")


@pytest.fixture
def inst():
    i = Instance.create("t1", "netfilter", "64:ff9b::/96", netns=1, capacity=1024)
    yield i
    i.close()


def parse(text):
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def sample_values(family):
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_names_and_slots_are_unique_and_every_counter_is_there():
    names = [metrics.metric_name(n) for n, _slot in metrics.COUNTER_SLOTS] + \
        [metrics.metric_name(n) for n in GAUGES]
    assert len(set(names)) == len(names)
    slots = [slot for _name, slot in metrics.COUNTER_SLOTS]
    assert len(set(slots)) == len(slots) and 0 < min(slots) and max(slots) < SLOTS
    covered = {n for n, _slot in metrics.COUNTER_SLOTS} | set(GAUGES)
    assert covered >= set(COUNTER_NAMES + DATAPLANE_COUNTER_NAMES + SYNC_COUNTER_NAMES)
    assert metrics.metric_name("JSTAT_RECEIVED6") == "jool_received6"
    assert metrics.metric_name("JSTAT64_TTL") == "jool_64_ttl"
    assert metrics.metric_name("JSTAT46_TTL") == "jool_46_ttl"
    assert metrics.metric_name("JOOL_DP_RX_FRAMES") == "jool_dp_rx_frames"
    assert metrics.metric_name("JOOL_SS_SENT") == "jool_ss_sent"


def test_every_counter_per_process_sums_to_stats_display(inst):
    inst.pool4_add("udp", "192.0.2.2/32", 1, 3000)
    inst.pool4_add("tcp", "192.0.2.2/31", 100, 199)
    inst.bib_add("udp", "2001:db8::5", 2000, "192.0.2.2", 2000)
    # Counts spread over the control row, two workers' rows and a row beyond
    # the (absent) pool, as a pool that once had more workers leaves them.
    for row, bump in ((0, 1), (1, 10), (2, 100), (7, 1000)):
        for slot in range(1, SLOTS):
            inst.counters.row(row)[slot] += bump * slot
    families = parse(metrics.render([metrics.snapshot(inst)], refused_requests=4))
    displayed = dict(inst.stats(userspace=True))
    # Whatever `stats display --userspace` shows, the metrics have.
    assert set(displayed) == {n for n, _slot in metrics.COUNTER_SLOTS} | set(GAUGES)
    for name, value in displayed.items():
        family = families[metrics.metric_name(name)]
        if name in GAUGES:
            assert family.type == "gauge"
            assert sample_values(family) == {(("instance", "t1"),): value}, name
            continue
        assert family.type == "counter"
        assert family.documentation.startswith(name + ":")
        workers = {s.labels["worker"]: s.value for s in family.samples}
        assert set(workers) == {"control", "0", "1", "6"}, workers     # row 7: worker 6
        assert sum(workers.values()) == value, name
    tables = sample_values(families["jool_table_entries"])
    assert tables[(("instance", "t1"), ("protocol", "udp"), ("table", "bib"))] == 1
    assert tables[(("instance", "t1"), ("protocol", "tcp"), ("table", "sessions"))] == 0
    capacity = sample_values(families["jool_table_capacity"])
    assert capacity[(("instance", "t1"), ("table", "sessions"))] == 1024
    ports = sample_values(families["jool_pool4_ports"])
    assert ports[(("instance", "t1"), ("protocol", "udp"))] == 3000
    assert ports[(("instance", "t1"), ("protocol", "tcp"))] == 200
    assert ports[(("instance", "t1"), ("protocol", "icmp"))] == 0
    used = sample_values(families["jool_pool4_ports_used"])
    assert used[(("instance", "t1"), ("protocol", "udp"))] == 1
    info = families["jool_instance"]
    assert info.type == "info"
    assert info.samples[0].labels == {"instance": "t1", "framework": "netfilter",
                                      "pool6": "64:ff9b::/96"}
    assert sample_values(families["jool_control_refused_requests"]) == {(): 4}
    assert sample_values(families["jool_sync_queue_capacity"]) == {(("instance", "t1"),): 512}


def test_instances_share_their_families_and_odd_names_are_escaped(inst):
    other = Instance.create('a"b\\c', "iptables", "2001:db8:64::/96", netns=1, capacity=64)
    try:
        text = metrics.render([metrics.snapshot(inst), metrics.snapshot(other)])
        assert text.endswith("# EOF\n")
        families = parse(text)          # the parser refuses a family split in two
        received = families["jool_received6"]
        assert {s.labels["instance"] for s in received.samples} == {"t1", 'a"b\\c'}
        assert sample_values(families["jool_table_capacity"])[
            (("instance", 'a"b\\c'), ("table", "sessions"))] == 64
    finally:
        other.close()


def test_no_instance_still_parses():
    families = parse(metrics.render([]))
    assert sample_values(families["jool_control_refused_requests"]) == {(): 0}


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.2:9464", (socket.AF_INET, "192.0.2.2", 9464)),
    ("[2001:db8::1]:80", (socket.AF_INET6, "2001:db8::1", 80)),
    ("[::]:9464", (socket.AF_INET6, "::", 9464)),
    (" 127.0.0.1:1 ", (socket.AF_INET, "127.0.0.1", 1)),
])
def test_listen_addresses(text, expected):
    assert metrics.parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9464", "192.0.2.2", "2001:db8::1:9464", "[2001:db8::1]",
                                  "host.example:9464", "192.0.2.2:0", "192.0.2.2:65536",
                                  "192.0.2.2:http", "[192.0.2.2:1"])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError):
        metrics.parse_listen(text)


def test_sync_figures_follow_the_joold_link(inst):
    def figures():
        families = parse(metrics.render([metrics.snapshot(inst)]))
        return {name: int(families[name].samples[0].value) for name in
                ("jool_sync_enabled", "jool_sync_joold_attached", "jool_sync_queue_records",
                 "jool_sync_awaiting_ack")}
    assert inst._sync is None
    assert set(figures().values()) == {0}
    assert inst._sync is None           # reading the figures does not create the queue
    inst.global_update("ss-enabled", True)
    inst.sync.link = object()           # what attach() records: joold's link
    inst.sync.count, inst.sync.awaiting_ack = 5, True
    assert figures() == {"jool_sync_enabled": 1, "jool_sync_joold_attached": 1,
                         "jool_sync_queue_records": 5, "jool_sync_awaiting_ack": 1}
    inst.sync.link = None
