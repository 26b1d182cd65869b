"""Super-frames (issue 7). Offloads on: the clients' TSO/GSO frames reach the
workers whole (virtio-net headers on the rings), are translated once and handed to
the kernel whole to segment (virtio-net headers on egress). Offloads off: the
workers merge a stream's segments into super-frames themselves (software GRO).
JOOL_GSO=0: super-frames are cut into segments in user space. Every way, 200 MB of
TCP each direction arrive with the SHA-256 they left with."""

import os
import shutil
import subprocess
import sys

import pytest

from netns_support import SHA_SINK, SHA_SOURCE, jool_counter, running_lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="needs root and nftables")

SIZE = 200 << 20

def stat(lab, name):
    return jool_counter(lab.jool, name)


def offloads_on(lab, node, ifname):
    out = lab.exec(node, "ethtool", "-k", ifname).stdout
    return "tcp-segmentation-offload: on" in out


MODES = {
    "offloads-on": (True, "1"),         # client offloads, JOOL_GSO
    "offloads-off": (False, "1"),
    "gso-off": (True, "0"),
}


@pytest.fixture(params=sorted(MODES))
def lab(request):
    client_offloads, gso = MODES[request.param]
    with running_lab("sf", client_offloads=client_offloads, jool_env={"JOOL_GSO": gso}) as lab:
        lab.mode = request.param
        yield lab


def transfer(lab, sink_node, sink_addr, port, source_node, target):
    sink = lab.spawn(sink_node, sys.executable, "-c", SHA_SINK, sink_addr, port,
                     stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    source = lab.exec(source_node, sys.executable, "-c", SHA_SOURCE, target, port, SIZE, timeout=120)
    assert source.returncode == 0, source.stderr
    received = sink.communicate(timeout=60)[0].split()
    return source.stdout.split(), received


@pytest.mark.parametrize("direction", ["6to4", "4to6"])
def test_200_mb_arrive_intact(lab, direction):
    on = offloads_on(lab, "n6", "to_jool_v6") and offloads_on(lab, "n4", "to_jool_v4")
    assert on == MODES[lab.mode][0]
    gso_before = stat(lab, "JOOL_DP_GSO_SENT")
    merged_before = stat(lab, "JOOL_DP_COALESCED")
    if direction == "6to4":
        sent, received = transfer(lab, "n4", "192.0.2.5", 5001, "n6", "64:ff9b::192.0.2.5")
    else:                               # through the static BIB entry 2001:db8::5#2000
        sent, received = transfer(lab, "n6", "2001:db8::5", 2000, "n4", "192.0.2.2")
    assert sent == received and int(sent[0]) == SIZE
    gso = stat(lab, "JOOL_DP_GSO_SENT") - gso_before
    merged = stat(lab, "JOOL_DP_COALESCED") - merged_before
    if lab.mode == "gso-off":
        assert gso == 0 and merged == 0
    else:
        # One translation carried many segments: super-frames went out whole.
        assert gso > 100
    if lab.mode == "offloads-off":
        assert merged > 10 * gso / 2        # mostly merged by the workers themselves
    assert stat(lab, "JOOL_DP_RX_TRUNCATED") == 0
