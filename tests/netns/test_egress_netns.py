"""The egress path in two real namespaces: misses go through the kernel and are
queued, the resolver learns next hops from the control process's network mirror,
cached frames reach the peer intact, and changes to neighbours and MTUs flush and
re-learn (jool/_fast/egress.pyx, jool/control/netmirror.py,
jool/dataplane/nexthop.py)."""

import json
import subprocess
import sys
import textwrap

import pytest

from netns_support import ROOT, run

# Runs inside the translator's namespace: builds real packets, sends them through
# an Egress with a real mirror and resolver, reports what happened as JSON lines.
SCRIPT = textwrap.dedent(r"""
    import json, os, socket, struct, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    from jool._fast.egress import Egress
    from jool._fast.stats import DATAPLANE_COUNTER_NAMES, DATAPLANE_FIRST_SLOT
    from jool.control.instance import now_ms
    from jool.control.netmirror import NetMirror
    from jool.dataplane.nexthop import Resolver

    def csum(data):
        if len(data) % 2:
            data += b"\0"
        s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff

    def udp4(payload, size=0, df=True):
        payload = payload + bytes(max(0, size - 28 - len(payload)))
        src, dst = socket.inet_aton("198.51.100.1"), socket.inet_aton("198.51.100.2")
        udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
        c = csum(src + dst + struct.pack("!BBH", 0, 17, len(udp)) + udp) or 0xffff
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000 if df else 0, 64, 17, 0, src, dst)
        return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + udp

    def udp6(payload):
        src = socket.inet_pton(socket.AF_INET6, "2001:db8:1::1")
        dst = socket.inet_pton(socket.AF_INET6, "2001:db8:1::2")
        udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
        c = csum(src + dst + struct.pack("!I3xB", len(udp), 17) + udp) or 0xffff
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
        return struct.pack("!IHBB16s16s", 0x60000000, len(udp), 17, 64, src, dst) + udp

    row = np.zeros(96, dtype=np.uint64)
    counter = lambda name: int(row[DATAPLANE_FIRST_SLOT + DATAPLANE_COUNTER_NAMES.index(name)])
    mirror = NetMirror("test%d" % os.getpid())
    resolver = Resolver(mirror.name)
    egress = Egress(counters=row)

    def settle():
        # What the control loop and the worker do between wakeups, until the
        # kernel's tables are quiet (neighbour resolution publishes too).
        quiet = 0
        while quiet < 3:
            time.sleep(0.15)
            mirror.on_readable()
            quiet = 0 if mirror.refresh() else quiet + 1
        if resolver.changed():
            egress.flush()
        resolver.serve(egress, now_ms())

    def learn(make, families=(4,)):
        # Sends until every destination is cached (neighbour discovery may still be
        # running at the first tries), at most 5 s.
        keys = {4: socket.inet_aton("198.51.100.2"),
                6: socket.inet_pton(socket.AF_INET6, "2001:db8:1::2")}
        for attempt in range(25):
            egress.send(make(attempt), now_ms())
            settle()
            if all((egress.entry(f, keys[f], now_ms()) or {}).get("state") == "usable"
                   for f in families):
                return
            time.sleep(0.05)

    def report(step, **extra):
        entry4 = egress.entry(4, socket.inet_aton("198.51.100.2"), now_ms())
        entry6 = egress.entry(6, socket.inet_pton(socket.AF_INET6, "2001:db8:1::2"), now_ms())
        out = {"step": step, "cached": counter("JOOL_DP_TX_CACHED"),
               "kernel": counter("JOOL_DP_TX_KERNEL"), "errors": counter("JOOL_DP_TX_ERRORS"),
               "misses": counter("JOOL_DP_NH_MISSES"), "learned": counter("JOOL_DP_NH_LEARNED"),
               "entry4": entry4 and dict(entry4, eth=entry4["eth"].hex()),
               "entry6": entry6 and dict(entry6, eth=entry6["eth"].hex()),
               "generation": resolver.generation}
        out.update(extra)
        print(json.dumps(out), flush=True)

    try:
        # 1: unknown destinations leave through the kernel (which resolves the
        # neighbours) and are queued.
        egress.send([udp4(b"kernel-4"), udp6(b"kernel-6")], now_ms())
        report("first")
        learn(lambda i: [udp4(b"probe-4-%d" % i), udp6(b"probe-6-%d" % i)], (4, 6))
        report("learned")
        # 2: learned: frames leave on the packet socket.
        egress.send([udp4(b"cached-4-%d" % i) for i in range(3)]
                    + [udp6(b"cached-6-%d" % i) for i in range(3)], now_ms())
        report("cached")
        # 3: bigger than the next hop's MTU: the kernel's path, not the cache.
        subprocess.run(["ip", "link", "set", "t0", "mtu", "1400"], check=True)
        learn(lambda i: [udp4(b"again-4-%d" % i)])
        egress.send([udp4(b"big-4", size=1450, df=False)], now_ms())
        report("mtu")
        # 4: the neighbour's address changes: the mirror flushes, the resolver
        # learns the new one.
        subprocess.run(["ip", "neigh", "replace", "198.51.100.2", "lladdr",
                        "02:00:5e:00:53:99", "dev", "t0", "nud", "permanent"], check=True)
        learn(lambda i: [udp4(b"moved-4-%d" % i)])
        egress.send([udp4(b"moved-again-4")], now_ms())
        report("moved")
    finally:
        egress.close()
        resolver.close()
        mirror.close()
""")

# Runs in the peer's namespace: collects datagrams until its stdin closes.
RECEIVER = textwrap.dedent(r"""
    import json, socket, select, sys, time
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s4.bind(("198.51.100.2", 5000))
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s6.bind(("2001:db8:1::2", 5000))
    print("ready", flush=True)
    got = []
    end = time.time() + 30
    while time.time() < end:
        ready, _, _ = select.select([s4, s6, sys.stdin], [], [], 0.5)
        if sys.stdin in ready:
            time.sleep(0.3)             # what is still in flight
            ready = [s for s in (s4, s6) if select.select([s], [], [], 0)[0]]
            end = 0
        for s in ready:
            while select.select([s], [], [], 0)[0]:
                got.append(s.recv(4096).rstrip(b"\0").decode(errors="replace"))
    print(json.dumps(got), flush=True)
""")


@pytest.fixture
def pair(netns_factory):
    a, b = netns_factory("jeg"), netns_factory("jeg")
    run(["ip", "link", "add", "t0", "netns", a.name, "type", "veth", "peer", "name", "t1",
         "netns", b.name])
    for ns, dev, v4, v6 in ((a, "t0", "198.51.100.1/24", "2001:db8:1::1/64"),
                            (b, "t1", "198.51.100.2/24", "2001:db8:1::2/64")):
        ns.exec("ip", "addr", "add", v4, "dev", dev, check=True)
        ns.exec("ip", "addr", "add", v6, "dev", dev, "nodad", check=True)
        # No router solicitations: their link-local neighbours would publish new
        # mirror generations at random moments of the test.
        ns.exec("sysctl", "-qw", f"net.ipv6.conf.{dev}.router_solicitations=0", check=True)
        ns.exec("ip", "link", "set", dev, "up", check=True)
    return a, b


def test_egress_learns_sends_and_relearns(pair):
    a, b = pair
    receiver = subprocess.Popen(["ip", "netns", "exec", b.name, sys.executable, "-c", RECEIVER],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        result = a.exec(sys.executable, "-c", SCRIPT, str(ROOT), timeout=30)
        assert result.returncode == 0, result.stderr
        steps = {r["step"]: r for r in map(json.loads, result.stdout.splitlines())}
        received, _ = receiver.communicate("", timeout=20)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    got = json.loads(received.splitlines()[-1])

    first = steps["first"]
    assert first["kernel"] == 2 and first["cached"] == 0 and first["misses"] == 2
    assert first["entry4"]["state"] == "pending"

    learned = steps["learned"]
    peer_mac = learned["entry4"]["eth"][:12]
    own_mac = learned["entry4"]["eth"][12:24]
    assert learned["entry4"]["state"] == "usable" and learned["entry4"]["eth"].endswith("0800")
    assert learned["entry6"]["state"] == "usable" and learned["entry6"]["eth"].endswith("86dd")
    assert learned["entry4"]["mtu"] == 1500

    cached = steps["cached"]
    assert cached["cached"] == learned["cached"] + 6 and cached["kernel"] == learned["kernel"]

    mtu = steps["mtu"]
    assert mtu["entry4"]["mtu"] == 1400, "the new MTU came through the mirror"
    assert mtu["generation"] > learned["generation"]
    # 1450 bytes on a 1400-byte link: not put on the packet socket; the kernel's
    # raw socket refuses it (EMSGSIZE; the translator fragments before this point).
    assert mtu["cached"] == cached["cached"] + 1 and mtu["errors"] == cached["errors"] + 1

    moved = steps["moved"]
    assert moved["entry4"]["eth"] == "02005e005399" + own_mac + "0800"
    assert moved["entry4"]["eth"][:12] != peer_mac

    # What the peer got: everything before the move (it no longer receives frames
    # addressed to the made-up MAC), each datagram whole.
    for payload in ("kernel-4", "kernel-6", "probe-4-0", "probe-6-0", "again-4-0",
                    *("cached-4-%d" % i for i in range(3)), *("cached-6-%d" % i for i in range(3))):
        assert payload in got, (payload, got)
    assert "big-4" not in got
    assert moved["errors"] == mtu["errors"]


MIRROR_SCRIPT = textwrap.dedent(r"""
    import json, os, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    from jool.control.netmirror import NetMirror

    mirror = NetMirror("test%d" % os.getpid())

    def step(*cmd):
        if cmd:
            subprocess.run(cmd, check=True)
        time.sleep(0.2)
        mirror.on_readable()
        return mirror.refresh()

    try:
        out = {"initial": mirror.document["neigh"], "policy0": mirror.document["policy"]}
        out["add"] = step("ip", "neigh", "add", "198.51.100.7", "lladdr", "02:00:5e:00:53:07",
                          "dev", "t0", "nud", "reachable")
        out["stale"] = step("ip", "neigh", "change", "198.51.100.7", "lladdr",
                            "02:00:5e:00:53:07", "dev", "t0", "nud", "stale")
        out["new_mac"] = step("ip", "neigh", "change", "198.51.100.7", "lladdr",
                              "02:00:5e:00:53:08", "dev", "t0", "nud", "stale")
        out["delete"] = step("ip", "neigh", "del", "198.51.100.7", "dev", "t0")
        out["route"] = step("ip", "route", "add", "203.0.113.0/24", "via", "198.51.100.2")
        out["route_doc_same"] = mirror.document["neigh"] == out["initial"]
        out["rule"] = step("ip", "rule", "add", "fwmark", "7", "table", "100")
        out["policy1"] = mirror.document["policy"]
        print(json.dumps(out))
    finally:
        mirror.close()
""")


def test_mirror_publishes_what_workers_use_and_nothing_else(pair):
    a, _b = pair
    result = a.exec(sys.executable, "-c", MIRROR_SCRIPT, str(ROOT), timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["add"] is True
    assert out["stale"] is False, "REACHABLE -> STALE changes nothing a worker uses"
    assert out["new_mac"] is True
    assert out["delete"] is True
    # A route changes no neighbour, but the workers' cached routes must go.
    assert out["route"] is True and out["route_doc_same"]
    assert out["policy0"] is False and out["policy1"] is True and out["rule"] is True
