"""The netdev-ingress rules of jool/control/kernel.py against real traffic: a
translator namespace T and a peer P joined by a veth pair; P probes T, and what T's
instance claims must get no answer from T's kernel, while the rest still does."""

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from jool.control import kernel                                   # noqa: E402

GRAYBOX_POOL4 = [(p, "192.0.2.2", 1, 3000) for p in ("tcp", "udp", "icmp")]
POOL6 = "64:ff9b::/96"
IN_POOL6 = "64:ff9b::c000:205"

# Runs in P: every probe at once (threads), each answered or met with silence.
PROBE = textwrap.dedent("""
    import json, socket, subprocess, sys, threading
    probes = json.loads(sys.argv[1])
    results = [None] * len(probes)

    def one(i, kind, addr, port):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        if kind == "ping":
            cmd = ["ping", "-6" if family == socket.AF_INET6 else "-4", "-c1", "-W1", "-n", addr]
            done = subprocess.run(cmd, capture_output=True)
            results[i] = "answer" if done.returncode == 0 else "silence"
            return
        s = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        s.settimeout(1.0)
        try:
            s.connect((addr, port))
            if kind == "bigudp":            # 3000 bytes: fragmented on the 1500-byte veth
                s.setsockopt(socket.IPPROTO_IP, 10, 0)      # IP_MTU_DISCOVER: DONT
                s.send(b"f" * 3000)
                s.recv(100)
            elif kind == "udp":
                s.send(b"probe")
                s.recv(100)
            results[i] = "answer"
        except ConnectionRefusedError:
            results[i] = "answer"           # port unreachable / RST: the kernel spoke
        except (socket.timeout, TimeoutError):
            results[i] = "silence"
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(i, *p)) for i, p in enumerate(probes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))
""")


def ok(result):
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def pair(netns_factory):
    """(T, P): T holds 192.0.2.2 and 192.0.2.3 (both its own), 2001:db8::1 and, on lo,
    an address inside pool6 so that the kernel would answer for it."""
    t, p = netns_factory("jk-t"), netns_factory("jk-p")
    ok(t.exec("ip", "link", "add", "veth-t", "type", "veth", "peer", "name", "veth-p",
              "netns", p.name))
    for cmd in (["ip", "addr", "add", "192.0.2.2/24", "dev", "veth-t"],
                ["ip", "addr", "add", "192.0.2.3/24", "dev", "veth-t"],
                ["ip", "addr", "add", "2001:db8::1/64", "dev", "veth-t", "nodad"],
                ["ip", "addr", "add", IN_POOL6 + "/128", "dev", "lo", "nodad"],
                ["ip", "link", "set", "veth-t", "up"],
                ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"],
                ["sysctl", "-qw", "net.ipv6.icmp.ratelimit=0"]):
        ok(t.exec(*cmd))
    for cmd in (["ip", "addr", "add", "192.0.2.5/24", "dev", "veth-p"],
                ["ip", "addr", "add", "2001:db8::5/64", "dev", "veth-p", "nodad"],
                ["ip", "link", "set", "veth-p", "up"],
                ["ip", "route", "add", POOL6, "via", "2001:db8::1"]):
        ok(p.exec(*cmd))
    return t, p


def probe(p, *probes):
    out = ok(p.exec(sys.executable, "-c", PROBE, json.dumps(probes), timeout=60))
    return dict(zip(probes, json.loads(out)))


def counters_off(text):
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


GRAYBOX_PROBES = {
    ("ping", IN_POOL6, 0): "silence",           # pool6: the translator's
    ("udp", IN_POOL6, 53): "silence",
    ("ping", "192.0.2.2", 0): "silence",        # ICMP to a pool4 address
    ("udp", "192.0.2.2", 1): "silence",
    ("udp", "192.0.2.2", 2000): "silence",
    ("udp", "192.0.2.2", 3000): "silence",
    ("tcp", "192.0.2.2", 2000): "silence",
    ("udp", "192.0.2.2", 3001): "answer",       # outside pool4: the kernel's
    ("udp", "192.0.2.2", 4101): "answer",
    ("tcp", "192.0.2.2", 4101): "answer",
    ("tcp", "192.0.2.3", 2000): "answer",       # the host's other address
    ("ping", "192.0.2.3", 0): "answer",
    ("ping", "2001:db8::1", 0): "answer",
    ("udp", "2001:db8::1", 2000): "answer",
    # Non-first fragments to a pool4 address are the translator's, whatever the port
    # (the first one alone gives the kernel nothing to answer); elsewhere the kernel's.
    ("bigudp", "192.0.2.2", 4101): "silence",
    ("bigudp", "192.0.2.3", 4101): "answer",
}


def test_rules_claim_exactly_the_translators_traffic(pair, monkeypatch):
    t, p = pair
    assert not kernel.present("default", netns=t.name)
    before = probe(p, *GRAYBOX_PROBES)
    assert set(before.values()) == {"answer"}, before      # the kernel answers them all

    script = kernel.install("default", ["veth-t"], POOL6, GRAYBOX_POOL4, netns=t.name)
    assert 'device "veth-t"' in script
    assert kernel.present("default", netns=t.name)
    assert probe(p, *GRAYBOX_PROBES) == GRAYBOX_PROBES
    listing = kernel.listing("default", netns=t.name)
    for rule in ("ip6 daddr 64:ff9b::/96", "ip protocol icmp", "udp dport @pool4_udp",
                 "tcp dport @pool4_tcp", "frag-off"):
        line = next(line for line in listing.splitlines() if rule in line)
        assert not re.search(r"counter packets 0 ", line), line      # it did the dropping

    # Replaced in one transaction: other ports now, and still a single table.
    kernel.install("default", ["veth-t"], POOL6, [("udp", "192.0.2.2", 4000, 4200)],
                   netns=t.name)
    tables = ok(t.exec("nft", "list", "tables"))
    assert tables.split("\n").count("table netdev jool_default") == 1, tables
    assert probe(p, ("udp", "192.0.2.2", 2000), ("tcp", "192.0.2.2", 2000),
                 ("udp", "192.0.2.2", 4101), ("udp", "192.0.2.2", 4201),
                 ("ping", "192.0.2.2", 0), ("ping", IN_POOL6, 0)) == {
        ("udp", "192.0.2.2", 2000): "answer", ("tcp", "192.0.2.2", 2000): "answer",
        ("udp", "192.0.2.2", 4101): "silence", ("udp", "192.0.2.2", 4201): "answer",
        ("ping", "192.0.2.2", 0): "silence", ("ping", IN_POOL6, 0): "silence"}

    # A replacement nft refuses leaves the old rules whole, and says why.
    kept = counters_off(kernel.listing("default", netns=t.name))
    real = kernel.claim_ruleset
    monkeypatch.setattr(kernel, "claim_ruleset",
                        lambda *a, **kw: real(*a, **kw).replace("counter drop", "countr drop"))
    with pytest.raises(kernel.KernelRulesError, match="countr"):
        kernel.install("default", ["veth-t"], POOL6, GRAYBOX_POOL4, netns=t.name)
    monkeypatch.setattr(kernel, "claim_ruleset", real)
    assert counters_off(kernel.listing("default", netns=t.name)) == kept

    # Another instance has its own table.
    kernel.install("alpha", ["veth-t"], None, [("tcp", "192.0.2.3", 7000, 7000)],
                   netns=t.name)
    assert probe(p, ("tcp", "192.0.2.3", 7000), ("tcp", "192.0.2.3", 7001)) == {
        ("tcp", "192.0.2.3", 7000): "silence", ("tcp", "192.0.2.3", 7001): "answer"}
    assert kernel.remove("alpha", netns=t.name)
    assert kernel.present("default", netns=t.name)

    assert kernel.remove("default", netns=t.name)
    assert not kernel.present("default", netns=t.name)
    assert not kernel.remove("default", netns=t.name)
    assert ok(t.exec("nft", "list", "ruleset")).strip() == ""
    after = probe(p, *GRAYBOX_PROBES)
    assert set(after.values()) == {"answer"}, after


def test_empty_pool4_claims_high_ports_of_local_addresses(pair):
    t, p = pair
    kernel.install("default", ["veth-t"], POOL6, [], empty=["192.0.2.2"], netns=t.name)
    assert probe(p, ("udp", "192.0.2.2", 61000), ("udp", "192.0.2.2", 61001),
                 ("tcp", "192.0.2.2", 65535), ("tcp", "192.0.2.2", 2000),
                 ("udp", "192.0.2.3", 62000), ("ping", "192.0.2.3", 0)) == {
        ("udp", "192.0.2.2", 61000): "answer", ("udp", "192.0.2.2", 61001): "silence",
        ("tcp", "192.0.2.2", 65535): "silence", ("tcp", "192.0.2.2", 2000): "answer",
        ("udp", "192.0.2.3", 62000): "answer", ("ping", "192.0.2.3", 0): "answer"}
    assert kernel.remove("default", netns=t.name)
    assert ok(t.exec("nft", "list", "ruleset")).strip() == ""


def test_odd_names_and_many_entries(pair):
    t, _ = pair
    pool4 = [(proto, f"198.51.100.{i}", 10 * i, 10 * i + 5)
             for i in range(256) for proto in ("tcp", "udp")]
    pool4 += [("icmp", "203.0.113.0", 0, 65535)]
    script = kernel.install("odd-name.1", ["veth-t", "lo0x"], POOL6, pool4, netns=t.name)
    assert script.count("drop") < 10                     # sets, not one rule per entry
    assert kernel.present("odd-name.1", netns=t.name)
    assert not kernel.present("odd_name_1", netns=t.name)
    listing = kernel.listing("odd-name.1", netns=t.name)
    assert "198.51.100.255 . 2550-2555" in listing
    assert kernel.remove("odd-name.1", netns=t.name)
    assert ok(t.exec("nft", "list", "ruleset")).strip() == ""
    with pytest.raises(ValueError):
        kernel.claim_ruleset("x", ['bad"name'], POOL6, [])


def test_offloads_and_interfaces(pair):
    t, _ = pair
    assert kernel.interfaces(netns=t.name) == ["veth-t"]
    listed = ok(t.exec(sys.executable, "-c",
                       f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                       "from jool.control import kernel; print(kernel.interfaces())"))
    assert listed.strip() == "['veth-t']"
    ok(t.exec("ethtool", "-K", "veth-t", "gro", "on", "gso", "on", "tso", "on"))
    changed = kernel.disable_offloads("veth-t", netns=t.name)
    assert {"generic-receive-offload", "generic-segmentation-offload",
            "tcp-segmentation-offload"} <= set(changed), changed
    features = ok(t.exec("ethtool", "-k", "veth-t"))
    for name in ("generic-receive-offload", "large-receive-offload",
                 "generic-segmentation-offload", "tcp-segmentation-offload"):
        assert re.search(rf"^{name}: off", features, re.M), name
    assert kernel.disable_offloads("veth-t", netns=t.name) == []
    with pytest.raises(kernel.KernelRulesError):
        kernel.disable_offloads("nonexistent0", netns=t.name)


def test_missing_tools_are_named(monkeypatch):
    monkeypatch.setattr(kernel.shutil, "which", lambda name, **kw: None)
    with pytest.raises(kernel.KernelRulesError, match="nftables"):
        kernel.present("default")
    with pytest.raises(kernel.KernelRulesError, match="ethtool"):
        kernel.disable_offloads("eth0")
