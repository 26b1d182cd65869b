"""Session sync under bad input, in namespaces (tools/halab; issue 8): with a
shared key on both nodes sessions still travel, and unsigned, forged, replayed
and malformed datagrams injected on the sync link are dropped and counted; a
keyless pair counts malformed datagrams and keeps running and synchronizing."""

import base64
import json
import os
import shutil
import sys
import time

import pytest

from netns_support import jool_counter, load_tool

from jool.sync import wire
from jool.sync.signing import SyncKey

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2")

KEY = b"a key every node of the pair shares"
WRONG_KEY = b"a key somebody guessed, not ours"

# Sends each base64 argument as one datagram to the sync group from J's sync
# address, as another node on the link would (loopback off: J's joold does not
# see them).
INJECTOR = r"""
import base64, socket, sys, time
group, port, local = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
for text in sys.argv[4:]:
    s.sendto(base64.b64decode(text), (group, port))
    time.sleep(0.02)
"""

SESSION_MAKER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("2001:db8::5", 0))
for dport in range(int(sys.argv[1]), int(sys.argv[1]) + int(sys.argv[2])):
    s.sendto(b"s", ("64:ff9b::cb00:7105", dport))          # 203.0.113.5
"""


def record(port):
    """One UDP session record K can install: 2001:db8::7#port <-> 192.0.2.2#port.
    The tests use ports above pool4's 1-3000: J maps its own clients inside that
    range, and one mapping equal to an injected record's would be another client's
    address on K, where J's records for it would then be dropped (as collided)."""
    r = wire.empty(1)
    r["src6"] = bytes.fromhex("20010db8" + "00" * 11 + "07")
    r["dst6"] = bytes.fromhex("0064ff9b" + "00" * 8 + "cb007109")             # 203.0.113.9
    r["dst4"] = bytes([203, 0, 113, 9])
    r["src4"] = bytes([192, 0, 2, 2])
    r["src6_port"] = r["src4_port"] = port
    r["dst6_port"] = r["dst4_port"] = 53
    r["proto"] = wire.PROTO_UDP
    r["expires"] = 120_000
    return wire.encode(r)


@pytest.fixture
def ha(tmp_path):
    halab = load_tool("halab")
    lab = halab.HaLab(jool_env={"JOOL_REGISTRY_DIR": str(tmp_path / "registry"),
                                "JOOL_TABLE_CAPACITY": "4096"})
    lab.up()
    lab.registry = tmp_path / "registry"
    try:
        yield lab
    finally:
        lab.down()


def stat(ha, node, name):
    return jool_counter(lambda *args: ha.jool(node, *args), name)


def stats(ha, node, names):
    return {name: stat(ha, node, name) for name in names}


def wait_for(predicate, seconds, step=0.1):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def inject(ha, *datagrams):
    halab = load_tool("halab")
    result = ha.exec("j", sys.executable, "-c", INJECTOR, halab.GROUP, halab.GROUP_PORT,
                     halab.OWN["j"][2], *(base64.b64encode(d).decode() for d in datagrams))
    assert result.returncode == 0, result.stderr


def make_sessions(ha, first_port, count):
    result = ha.exec("n6", sys.executable, "-c", SESSION_MAKER, first_port, count)
    assert result.returncode == 0, result.stderr


def control_pids(ha):
    return sorted(json.loads(f.read_text())["pid"] for f in ha.registry.glob("*.json"))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_pair(ha, extra=None):
    joolds = []
    for node in ("j", "k"):
        ha.start_translator(node)
        joolds.append(ha.start_joold(node, extra=extra))
    ha.assign("j")
    controls = control_pids(ha)
    assert len(controls) == 2
    return joolds, controls


def k_ports(ha):
    """Source ports of K's sessions of the injected client 2001:db8::7."""
    ports = set()
    for line in ha.sessions_csv("k", "udp")[1:]:
        cells = line.split(",")                 # Protocol, IPv6 remote address, its port...
        if cells[1] == "2001:db8::7":
            ports.add(int(cells[2]))
    return ports


def assert_still_running_and_syncing(ha, joolds, controls, first_port, expected_sessions):
    assert all(p.poll() is None for p in joolds), "a joold died"
    assert control_pids(ha) == controls and all(map(alive, controls)), "a control process died"
    make_sessions(ha, first_port, 20)
    assert wait_for(lambda: stat(ha, "k", "JSTAT_SESSIONS") >= expected_sessions, 5), \
        stats(ha, "k", ("JSTAT_SESSIONS", "JOOL_SS_RECEIVED", "JOOL_SS_INSTALLED"))


SIGNATURE_COUNTERS = ("JOOL_SS_UNSIGNED", "JOOL_SS_FORGED", "JOOL_SS_REPLAYED",
                      "JOOL_SS_MALFORMED")


def test_shared_key_syncs_and_drops_unsigned_forged_replayed(ha):
    key_file = ha.workdir / "sync.key"
    key_file.write_bytes(KEY + b"\n")
    key_file.chmod(0o600)
    joolds, controls = start_pair(ha, extra={"x-shared-key-file": str(key_file)})
    make_sessions(ha, 1000, 30)
    assert wait_for(lambda: stat(ha, "k", "JSTAT_SESSIONS") == 30, 5)
    assert stats(ha, "k", SIGNATURE_COUNTERS) == dict.fromkeys(SIGNATURE_COUNTERS, 0)
    installed = stat(ha, "k", "JOOL_SS_INSTALLED")

    ours = SyncKey(KEY)                                 # a third node with the key
    legit = ours.sign(record(40903))
    inject(ha,
           record(40901),                               # unsigned (4.1.9's format)
           SyncKey(WRONG_KEY).sign(record(40902)),      # forged
           legit, legit,                                # the second one a replay
           ours.sign(os.urandom(500)),                  # authentic but malformed
           ours.sign(record(40904) * 22))               # 3140 bytes: cut at 2048
    expected = {"JOOL_SS_UNSIGNED": 1, "JOOL_SS_FORGED": 1, "JOOL_SS_REPLAYED": 1,
                "JOOL_SS_MALFORMED": 2}
    assert wait_for(lambda: stats(ha, "k", SIGNATURE_COUNTERS) == expected, 5), \
        stats(ha, "k", SIGNATURE_COUNTERS)
    assert stat(ha, "k", "JOOL_SS_INSTALLED") == installed + 1
    assert k_ports(ha) == {40903}
    assert_still_running_and_syncing(ha, joolds, controls, 2000, 30 + 1 + 20)
    # Nothing was counted on J: only K received the injected datagrams.
    assert stats(ha, "j", SIGNATURE_COUNTERS) == dict.fromkeys(SIGNATURE_COUNTERS, 0)


def test_keyless_pair_counts_malformed_datagrams_and_keeps_going(ha):
    joolds, controls = start_pair(ha)
    make_sessions(ha, 1000, 10)
    assert wait_for(lambda: stat(ha, "k", "JSTAT_SESSIONS") == 10, 5)
    good = bytearray(record(40905))
    bad_header, bad_fields = bytearray(good), bytearray(good)
    bad_header[0] = 0x8b                                # the record's length
    bad_fields[112] = 7                                 # no such protocol
    malformed = [
        b"",                                            # no record at all
        bytes(good[:100]),                              # truncated
        bytes(bad_header),
        bytes(bad_fields),
        bytes(bad_fields) + bytes(good[:60]),           # not a whole number of records
        os.urandom(1400),                               # random bytes
        b"\xa5" * 3000,                                 # oversized (cut at 2048)
    ]
    inject(ha, *malformed)
    assert wait_for(lambda: stat(ha, "k", "JOOL_SS_MALFORMED") == len(malformed), 5), \
        stats(ha, "k", ("JOOL_SS_MALFORMED", "JOOL_SS_REJECTED", "JOOL_SS_RECEIVED"))
    assert k_ports(ha) == set()
    assert stat(ha, "k", "JOOL_SS_INSTALLED") == 10
    # A keyed node's datagram: a keyless joold cannot check it and takes the
    # records, as 4.1.9 would (it skips the trailer).
    inject(ha, SyncKey(KEY).sign(record(40906)))
    assert wait_for(lambda: k_ports(ha) == {40906}, 5)
    assert stat(ha, "k", "JOOL_SS_MALFORMED") == len(malformed)
    assert stats(ha, "k", SIGNATURE_COUNTERS[:3]) == dict.fromkeys(SIGNATURE_COUNTERS[:3], 0)
    assert_still_running_and_syncing(ha, joolds, controls, 2000, 10 + 1 + 20)
