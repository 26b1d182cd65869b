"""The control process and the `jool` command across real network namespaces."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import pktlib as pl                                             # noqa: E402
from jool._fast.pipeline import Verdict                          # noqa: E402
from jool._fast.tables import Tables                             # noqa: E402
from jool.control.configblock import ConfigBlock, build_translator  # noqa: E402

NOBODY = 65534


def wait_gone(pid, seconds=5.0):
    """The daemon is not our child: wait for its /proc entry to go."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False


def ok(result):
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def test_two_namespaces_have_independent_instances(jool_env, netns_factory):
    a, b = netns_factory(), netns_factory()
    ok(jool_env.jool(a, "instance", "add", "--pool6", "64:ff9b::/96"))
    ok(jool_env.jool(b, "instance", "add", "alpha", "--iptables", "--pool6", "64:ff9b::/96"))
    ok(jool_env.jool(a, "pool4", "add", "--udp", "192.0.2.2", "1-3000"))
    ok(jool_env.jool(b, "-i", "alpha", "pool4", "add", "--udp", "198.51.100.9", "100-200"))

    shown = ok(jool_env.jool(a, "instance", "display", "--csv", "--no-headers"))
    assert sorted(shown.split()) == sorted([f"{a.inode:x},default,netfilter",
                                            f"{b.inode:x},alpha,iptables"])
    assert "192.0.2.2" in ok(jool_env.jool(a, "pool4", "display", "--udp", "--csv"))
    other = ok(jool_env.jool(b, "-i", "alpha", "pool4", "display", "--udp", "--csv"))
    assert "198.51.100.9" in other and "192.0.2.2" not in other
    # Each namespace's instance is its own: "alpha" does not exist in a.
    missing = jool_env.jool(a, "-i", "alpha", "pool4", "display")
    assert missing.returncode == 3

    # Removing the last instance of a namespace stops its control process.
    pids = jool_env.control_pids()
    assert len(pids) == 2
    ok(jool_env.jool(a, "instance", "flush"))
    ok(jool_env.jool(b, "instance", "remove", "alpha"))
    for pid in pids:
        assert wait_gone(pid), f"control process {pid} still runs"
    assert ok(jool_env.jool(a, "instance", "display", "--csv", "--no-headers")) == ""


def test_a_user_without_cap_net_admin_is_refused(jool_env, netns_factory):
    ns = netns_factory()
    ok(jool_env.jool(ns, "instance", "add", "--pool6", "64:ff9b::/96"))
    before = ok(jool_env.jool(ns, "global", "display", "--csv"))
    refused = jool_env.jool(ns, "global", "update", "udp-timeout", "0:10:00", user=NOBODY)
    assert refused.returncode == 1, refused
    assert "not permitted" in refused.stderr.lower()
    refused = jool_env.jool(ns, "pool4", "display", user=NOBODY)
    assert refused.returncode == 1
    assert ok(jool_env.jool(ns, "global", "display", "--csv")) == before
    # spec/cli.md §2.2: stats display needs no privilege.
    ok(jool_env.jool(ns, "stats", "display", "--all", user=NOBODY))


def test_atomic_file_with_one_bad_entry_leaves_the_configuration(jool_env, netns_factory,
                                                                   tmp_path):
    ns = netns_factory()
    good = {"instance": "edge", "framework": "netfilter",
            "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:07:00"},
            "pool4": [{"protocol": "UDP", "prefix": "192.0.2.2", "port range": "1-3000"}],
            "bib": [{"protocol": "UDP", "ipv6 address": "2001:db8::5#2000",
                     "ipv4 address": "192.0.2.2#2000"}]}
    path = tmp_path / "edge.json"
    path.write_text(json.dumps(good))
    ok(jool_env.jool(ns, "file", "handle", str(path)))

    def displays():
        return [ok(jool_env.jool(ns, "-i", "edge", *cmd)) for cmd in
                (("global", "display"), ("pool4", "display", "--udp"),
                 ("bib", "display", "--udp", "--numeric"))]
    before = displays()
    assert "0:07:00" in before[0] and "192.0.2.2" in before[1]
    bad = dict(good, **{"global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:09:00"},
                        "pool4": good["pool4"] + [{"protocol": "TCP", "prefix": "192.0.2.1/30"}]})
    path.write_text(json.dumps(bad))
    result = jool_env.jool(ns, "file", "handle", str(path))
    assert result.returncode == 22, result
    assert displays() == before


def test_static_bib_and_sessions_shown_in_jools_formats(jool_env, netns_factory):
    ns = netns_factory()
    ok(jool_env.jool(ns, "instance", "add", "--pool6", "64:ff9b::/96"))
    ok(jool_env.jool(ns, "pool4", "add", "--tcp", "192.0.2.2", "1-3000"))
    ok(jool_env.jool(ns, "bib", "add", "--tcp", "2001:db8::5#2000", "192.0.2.2#2000"))
    assert ok(jool_env.jool(ns, "bib", "display", "--numeric")) == \
        "[Static TCP] 192.0.2.2#2000 - 2001:db8::5#2000\n"
    assert ok(jool_env.jool(ns, "bib", "display", "--csv")).splitlines() == [
        "Protocol,IPv6 Address,IPv6 L4-ID,IPv4 Address,IPv4 L4-ID,Static?",
        "TCP,2001:db8::5,2000,192.0.2.2,2000,1"]

    # A worker of this namespace (here: this test, attached to the instance's
    # published configuration and tables) translates the first SYN of a flow.
    names = [n for n in os.listdir("/dev/shm")
             if n.startswith(f"jool64-{ns.inode}-default-") and n.endswith("-config")]
    assert len(names) == 1
    _, doc = ConfigBlock.attach(names[0]).read()
    tables = Tables.attach(doc["tables"])
    try:
        worker = build_translator(doc, tables)
        from jool.control.instance import now_ms
        syn = pl.ipv6("2001:db8::5", "64:ff9b::198.51.100.7", pl.tcp(2000, 443, flags=pl.SYN))
        verdict, _, _ = worker.translate(syn, now_ms=now_ms())
        assert verdict == Verdict.TRANSLATED
    finally:
        tables.close()
    lines = ok(jool_env.jool(ns, "session", "display", "--numeric")).splitlines()
    assert lines[0] == "-" * 33
    assert lines[1].startswith(("(V6_INIT) Expires in 0:03:5", "(V6_INIT) Expires in 0:04:00"))
    assert lines[2] == "Remote: 198.51.100.7#443\t2001:db8::5#2000"
    assert lines[3] == "Local: 192.0.2.2#2000\t64:ff9b::c633:6407#443"
    assert lines[4] == "-" * 33
    csv = ok(jool_env.jool(ns, "session", "display", "--numeric", "--csv", "--no-headers"))
    fields = csv.strip().split(",")
    assert fields[:9] == ["TCP", "2001:db8::5", "2000", "64:ff9b::c633:6407", "443",
                          "192.0.2.2", "2000", "198.51.100.7", "443"]
    assert fields[10] == "V6_INIT"
    assert "JSTAT_SESSIONS: 1" in ok(jool_env.jool(ns, "stats", "display"))


# A client of the control socket that misbehaves in the ways the test lists, run
# inside the namespace (abstract sockets are per namespace). It prints one JSON
# line: what each probe got back.
MISBEHAVING_CLIENT = r'''
import json, os, socket, struct, sys, time
name = "\0" + os.environ["JOOL_CONTROL_SOCKET"]

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(name)
    return s

def answer(s):
    try:
        head = s.recv(4)
        if len(head) < 4:
            return "closed"
        (n,) = struct.unpack("!I", head)
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        return json.loads(data)
    except (ConnectionError, socket.timeout) as exc:
        return type(exc).__name__

def probe(raw):
    s = connect()
    s.sendall(raw)
    s.shutdown(socket.SHUT_WR)
    got = answer(s)
    s.close()
    return got

def framed(obj):
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack("!I", len(data)) + data

out = {}
out["huge_length"] = probe(struct.pack("!I", 0xFFFFFFFF) + b"{}")
out["not_json"] = probe(framed(b"\xff\xfe not json"))
out["json_array"] = probe(framed([1, 2, 3]))
out["truncated"] = probe(struct.pack("!I", 100) + b'{"op": "instance.list"')
out["unknown_op"] = probe(framed({"op": "instance.explode"}))
out["no_op"] = probe(framed({"instance": "default"}))
out["bad_types"] = probe(framed({"op": "pool4.add", "proto": "udp", "prefix": 5,
                                 "min": "abc", "max": None}))
out["bad_global"] = probe(framed({"op": "global.update", "key": "udp-timeout",
                                  "value": {"nested": []}}))
# A client that sends half a request and waits must not hold up the others.
stalled = connect()
stalled.sendall(struct.pack("!I", 50) + b'{"op"')
t0 = time.monotonic()
out["while_stalled"] = probe(framed({"op": "instance.status"}))
out["while_stalled_s"] = time.monotonic() - t0
stalled.close()
print(json.dumps(out))
'''


# Sends the bytes given in hex as user nobody and prints what came back (b'' when
# the server closed the connection).
RAW_SENDER = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect("\0" + os.environ["JOOL_CONTROL_SOCKET"])
s.sendall(bytes.fromhex(sys.argv[1]))
try:
    print(repr(s.recv(4)))
except ConnectionResetError:
    print(repr(b""))
"""


def unprivileged_sends(ns, jool_env, raw):
    result = ns.exec(sys.executable, "-c", RAW_SENDER, raw.hex(), user=NOBODY,
                     env=jool_env.env, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_malformed_control_requests_are_refused_and_the_process_lives(jool_env,
                                                                        netns_factory):
    ns = netns_factory()
    ok(jool_env.jool(ns, "instance", "add", "--pool6", "64:ff9b::/96"))
    ok(jool_env.jool(ns, "pool4", "add", "--udp", "192.0.2.2", "1-3000"))
    before = [ok(jool_env.jool(ns, mode, "display", "--csv")) for mode in ("global", "pool4")]
    (control,) = jool_env.control_pids()

    result = ns.exec(sys.executable, "-c", MISBEHAVING_CLIENT, env=jool_env.env, timeout=60)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    # Framing errors: the connection is closed without an answer (a reset when
    # unread bytes were left behind).
    for probe in ("huge_length", "not_json", "json_array", "truncated"):
        assert got[probe] in ("closed", "ConnectionResetError"), (probe, got[probe])
    # Well-framed nonsense: EINVAL (234 for a JSON value of the wrong type, as the
    # config files get) with a message.
    for probe in ("unknown_op", "no_op", "bad_types", "bad_global"):
        assert got[probe]["status"] in (22, 234), (probe, got[probe])
        assert got[probe]["messages"], (probe, got[probe])
    assert got["while_stalled"] == {"status": 0, "data": "Running"}
    assert got["while_stalled_s"] < 2.0, got

    # An unprivileged peer may not even send a long message (stats display is short).
    assert unprivileged_sends(ns, jool_env, (1 << 20).to_bytes(4, "big") + b"{" * 4096) == \
        "b''"
    # Nor crash it with JSON nested deeper than Python's recursion limit.
    assert unprivileged_sends(ns, jool_env, (50000).to_bytes(4, "big") + b"[" * 50000) == \
        "b''"
    assert os.path.exists(f"/proc/{control}"), "deeply nested JSON killed the control process"

    # Nor lock root out by holding connections open.
    holder = subprocess.Popen(
        ["ip", "netns", "exec", ns.name, "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
         "--clear-groups", sys.executable, "-c",
         "import os, socket, sys, time\n"
         "held = []\n"
         "for _ in range(100):\n"
         "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
         "    s.connect('\\0' + os.environ['JOOL_CONTROL_SOCKET'])\n"
         "    held.append(s)\n"
         "print('holding', flush=True)\n"
         "time.sleep(8)\n"],
        env=jool_env.env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        time.sleep(0.5)
        started = time.monotonic()
        ok(jool_env.jool(ns, "global", "display", "--csv"))
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait(5)

    # The same process, unchanged, still serving.
    assert jool_env.control_pids() == [control]
    assert os.path.exists(f"/proc/{control}")
    assert [ok(jool_env.jool(ns, mode, "display", "--csv"))
            for mode in ("global", "pool4")] == before
