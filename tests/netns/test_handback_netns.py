"""What a --netfilter instance claims but does not translate goes back to the kernel
through the hand-back link (control/kernel.py), as Jool hands "untranslatable"
packets back to the host: the host still answers a ping to its pool4 address and
serves UDP on a pool4 port that no BIB entry maps, while translating."""

import os
import shutil
import time

import pytest

from netns_support import jool_counter, running_lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="needs root and nftables")

UDP_SERVICE = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.2", 2500)); s.settimeout(20)
print("ready", flush=True)
data, peer = s.recvfrom(100); s.sendto(b"host:" + data, peer)
"""

UDP_CLIENT = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b"hello", ("192.0.2.2", 2500)); print(s.recv(100).decode())
"""


def stat(lab, name):
    return jool_counter(lab.jool, name)


@pytest.fixture
def lab():
    with running_lab("hb") as lab:
        yield lab


def test_host_answers_what_the_translator_passes(lab):
    # The claim rules take every ICMP packet to the pool4 address; an echo whose
    # identifier no BIB entry maps is the host's (Jool: JSTAT_BIB4_NOT_FOUND, passed).
    ping = lab.exec("n4", "ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.2")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # UDP 2500 is inside pool4 (1-3000): claimed, not mapped, a host service's.
    import subprocess
    import sys
    service = lab.spawn("jool", sys.executable, "-c", UDP_SERVICE, stdout=subprocess.PIPE,
                        text=True)
    assert service.stdout.readline().strip() == "ready"
    answer = lab.exec("n4", sys.executable, "-c", UDP_CLIENT)
    assert answer.stdout.strip() == "host:hello", answer.stderr
    assert stat(lab, "JOOL_DP_HANDED_BACK") >= 4
    # ...while translating: a ping through the translator still works.
    assert lab.exec("n6", "ping", "-c", "1", "-W", "2", "64:ff9b::192.0.2.5").returncode == 0


def test_hand_back_link_goes_with_the_instance(lab):
    links = lab.exec("jool", "ip", "-br", "link").stdout
    assert "jool-back-tx" in links and "jool-back-rx" in links
    assert lab.jool("instance", "remove").returncode == 0
    deadline = time.monotonic() + 5
    while "jool-back-tx" in lab.exec("jool", "ip", "-br", "link").stdout:
        assert time.monotonic() < deadline, "the hand-back link outlived its instance"
        time.sleep(0.1)
