"""--iptables instances in the lab: the operator's mangle rules queue pool6 and
pool4 traffic (NFQUEUE) to the instance's workers, which translate it; what the
translator does not take goes back to the kernel (jool(8), IPTABLES INSTANCES)."""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netns_support import load_lab

ROOT = Path(__file__).resolve().parents[2]

N4, OWN4 = "192.0.2.5", "192.0.2.2"
N4_VIA_POOL6 = "64:ff9b::c000:205"

SERVER = r"""
import hashlib, json, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(15)
print("ready", flush=True)
c, peer = s.accept(); c.settimeout(15)
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    h.update(d); n += len(d)
c.sendall(h.digest() * 4096)            # 128 KiB back
c.close()
print(json.dumps({"received": n, "sha256": h.hexdigest(), "peer": peer[0]}), flush=True)
"""

CLIENT = r"""
import hashlib, json, os, socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
data = os.urandom(int(sys.argv[3]))
c.sendall(data); c.shutdown(socket.SHUT_WR)
back = b""
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    back += d
print(json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "back_ok":
                  back == hashlib.sha256(data).digest() * 4096}), flush=True)
"""


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    if shutil.which("ip6tables") is None:
        pytest.skip("iptables is not installed (tools/run-tests installs it)")
    lab = load_lab().Lab(prefix=f"ipt{secrets.token_hex(3)}-")
    lab.up()
    try:
        lab.start_translator(timeout=20, framework="iptables")
        yield lab
    finally:
        lab.down()
        left = [n for n in os.listdir("/run/netns") if n.startswith(lab.prefix)]
        assert not left, f"namespaces left behind: {left}"


def transfer(lab, server_node, server_addr, client_node, client_addr, port, size):
    server = subprocess.Popen(["ip", "netns", "exec", lab.ns(server_node), sys.executable,
                               "-c", SERVER, server_addr, str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        client = lab.exec(client_node, sys.executable, "-c", CLIENT, client_addr, port, size,
                          timeout=30)
        assert client.returncode == 0, client.stderr
        out, _ = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return json.loads(client.stdout), json.loads(out)


def dataplane_counters(lab):
    script = ("import glob, json, sys; sys.path.insert(0, %r)\n"
              "from jool.control.counters import CounterBlock\n"
              "t = {}\n"
              "for n in glob.glob('/dev/shm/jool64-%d-*-counters'):\n"
              "    b = CounterBlock.attach(n.split('/')[-1])\n"
              "    for k, v in b.dataplane_totals().items(): t[k] = t.get(k, 0) + v\n"
              "print(json.dumps(t))" % (str(ROOT), lab.inode("jool")))
    return json.loads(lab.exec("jool", sys.executable, "-c", script, timeout=10).stdout)


def test_iptables_instance_translates_what_the_rules_queue(lab):
    # Nothing claimed: no netdev table of ours in the translator's namespace.
    tables = lab.exec("jool", "nft", "list", "tables", timeout=10).stdout
    assert "jool_" not in tables

    ping = lab.exec("n6", "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2",
                    N4_VIA_POOL6, timeout=15)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    client, server = transfer(lab, "n4", N4, "n6", N4_VIA_POOL6, 5001, 2 << 20)
    assert server["received"] == 2 << 20 and server["sha256"] == client["sha256"]
    assert server["peer"] == OWN4 and client["back_ok"]

    # The translator's own address, on a port outside pool4 (1-3000): queued by
    # the rule, not translated, given back to the kernel, which answers.
    client, server = transfer(lab, "jool", OWN4, "n4", OWN4, 4000, 64 << 10)
    assert server["sha256"] == client["sha256"] and client["back_ok"]

    counters = dataplane_counters(lab)
    assert counters["JOOL_DP_NFQ_RECEIVED"] > 100
    assert counters["JOOL_DP_NFQ_ACCEPTED"] >= 5, counters

    sessions = lab.jool("session", "display", "--tcp", "--numeric", timeout=10)
    assert sessions.returncode == 0


def test_queue_numbers_of_two_iptables_instances_do_not_overlap(lab):
    second = lab.jool("instance", "add", "--iptables", "--pool6", "64:ff9b::/96", "second",
                      timeout=20)
    assert second.returncode == 0, second.stderr
    clash = lab.jool("instance", "add", "--iptables", "--pool6", "64:ff9b::/96",
                     "--queue", "64", "third", timeout=20)
    assert clash.returncode == 17 and "overlap" in clash.stderr
