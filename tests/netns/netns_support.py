"""Network namespaces and the `jool` command inside them, for end-to-end tests.

Every namespace is created by the test that uses it and removed afterwards, with
the processes started in it (by pid), even when the test fails."""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(cmd, check=True, timeout=30, **kw):
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True, **kw)


class Namespace:
    def __init__(self, prefix="jt"):
        self.name = f"{prefix}-{secrets.token_hex(3)}"
        run(["ip", "netns", "add", self.name])
        run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"])
        self.inode = os.stat(f"/run/netns/{self.name}").st_ino

    def exec(self, *cmd, user=None, env=None, check=False, timeout=30):
        prefix = ["ip", "netns", "exec", self.name]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                       "--inh-caps=-all", "--bounding-set=-all"]
        return run(prefix + list(cmd), check=check, env=env, timeout=timeout)

    def remove(self):
        run(["ip", "netns", "del", self.name], check=False)


class JoolEnv:
    """The environment the CLI and the control processes of one test share: a
    private registry directory and socket name, so tests never touch a real
    translator's."""

    def __init__(self, tmp_path):
        self.registry = tmp_path / "registry"
        self.env = dict(os.environ, PYTHONPATH=str(ROOT),
                        JOOL_REGISTRY_DIR=str(self.registry),
                        JOOL_CONTROL_SOCKET=f"jool-test/{secrets.token_hex(4)}",
                        JOOL_TABLE_CAPACITY="4096")

    def jool(self, ns, *args, user=None):
        return ns.exec(sys.executable, "-m", "jool.cli.jool", *args, user=user, env=self.env)

    def control_pids(self):
        pids = []
        if self.registry.is_dir():
            for f in self.registry.glob("*.json"):
                try:
                    pids.append(json.loads(f.read_text())["pid"])
                except (OSError, ValueError, KeyError):
                    pass
        return pids

    def kill_controls(self):
        for pid in self.control_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:            # it may have gone between the last check and now
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def load_tool(name):
    """A script of tools/ (no .py suffix) as a module, under the name tools/lab's
    own load_tool() gives it, so every loader shares one copy."""
    import importlib.machinery
    import importlib.util
    modname = "jool_tool_" + name.replace("-", "_")
    if modname not in sys.modules:
        loader = importlib.machinery.SourceFileLoader(modname, str(ROOT / "tools" / name))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(modname, loader))
        sys.modules[modname] = module
        loader.exec_module(module)
    return sys.modules[modname]


def load_lab():
    """tools/lab as a module: the Lab class of the tests."""
    return load_tool("lab")


def jool_counter(jool, name):
    """One counter, Jool's or ours (`jool stats display --all --userspace --csv`),
    with jool(*args) running the command where the instance is."""
    result = jool("stats", "display", "--all", "--userspace", "--csv")
    for line in result.stdout.splitlines():
        key, _, value = line.partition(",")
        if key == name:
            return int(value)
    raise KeyError(f"{name} (jool said: {result.stderr.strip()})")


# Echoes UDP datagrams on 192.0.2.5 port 7007 (n4 in the labs) until killed.
UDP_ECHO4 = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.0.2.5", 7007))
while True:
    data, peer = s.recvfrom(2048); s.sendto(data, peer)
"""

# A TCP sink and source for transfers checked end to end: the sink prints the
# byte count and SHA-256 of what it received, the source those of what it sent.
SHA_SINK = r"""
import hashlib, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(60)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(60)
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    h.update(d); n += len(d)
c.sendall(b"k"); c.close()
print(n, h.hexdigest(), flush=True)
"""

SHA_SOURCE = r"""
import hashlib, os, socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
h, sent, total = hashlib.sha256(), 0, int(sys.argv[3])
while sent < total:
    block = os.urandom(min(1 << 20, total - sent))
    c.sendall(block); h.update(block); sent += len(block)
c.shutdown(socket.SHUT_WR); c.recv(1)
print(sent, h.hexdigest(), flush=True)
"""


@contextlib.contextmanager
def running_lab(prefix, **lab_options):
    """tools/lab's topology with the translator started (graybox configuration),
    removed with every process in it on the way out, whatever happened."""
    lab = load_lab().Lab(prefix=f"{prefix}{secrets.token_hex(3)}-", **lab_options)
    lab.up()
    try:
        lab.start_translator(timeout=20)
        yield lab
    finally:
        lab.down()
