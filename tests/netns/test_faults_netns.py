"""Faults under load (issue 8): the control process killed and taken over, a worker
killed, instances removed and flushed while traffic flows. Each test has its own
lab (tools/lab) and a checksummed TCP transfer paced to span the fault."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netns_support import SHA_SINK, running_lab

from jool.control.registry import pid_alive as alive   # zombies count as dead

N4 = "192.0.2.5"
N4_VIA_POOL6 = "64:ff9b::c000:205"
PORT = 5001

# Sends argv[3] random bytes at argv[4] bytes per second, then prints the count and
# the SHA-256 of what it sent (SHA_SINK prints the same for what it received).
PACED_SOURCE = r"""
import hashlib, os, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
total, rate = int(sys.argv[3]), float(sys.argv[4])
h, sent, start = hashlib.sha256(), 0, time.monotonic()
while sent < total:
    block = os.urandom(min(1 << 16, total - sent))
    c.sendall(block); h.update(block); sent += len(block)
    ahead = start + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
c.shutdown(socket.SHUT_WR); c.recv(1)
print(sent, h.hexdigest(), flush=True)
"""


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    for tool in ("ip", "ss", "nft"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    with running_lab("flt") as lab:
        yield lab


def registry_entry(lab):
    registry = Path(lab.jool_cmd_env().get("JOOL_REGISTRY_DIR")
                    or "/run/jool-userspace/instances")
    return json.loads((registry / f"{lab.inode('jool')}.json").read_text())


def worker_pids(entry):
    return [pid for inst in entry["instances"] for pid in inst["pool"]["workers"] if pid]


def wait_until(predicate, seconds, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def received_bytes(lab):
    """What n4's end of the transfer has received so far (ss -ti bytes_received)."""
    out = lab.exec("n4", "ss", "-tinH", "state", "established", f"( sport = :{PORT} )",
                   timeout=5).stdout
    found = re.findall(r"bytes_received:(\d+)", out)
    return int(found[0]) if found else 0


def start_transfer(lab, size, rate):
    sink = lab.spawn("n4", sys.executable, "-c", SHA_SINK, N4, str(PORT),
                     stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    source = lab.spawn("n6", sys.executable, "-c", PACED_SOURCE, N4_VIA_POOL6, str(PORT),
                       str(size), str(rate), stdout=subprocess.PIPE, text=True)
    assert wait_until(lambda: received_bytes(lab) > 0, 10), "the transfer did not start"
    return sink, source


def finish_transfer(sink, source, seconds):
    sent = source.communicate(timeout=seconds)[0].split()
    got = sink.communicate(timeout=10)[0].split()
    assert source.returncode == 0 and len(sent) == 2, sent
    assert got == sent, (got, sent)             # every byte, the same SHA-256
    return int(sent[0])


def sessions(lab):
    """The TCP sessions as (addresses, state), without the expiry column."""
    out = lab.jool("session", "display", "--tcp", "--numeric", "--csv", "--no-headers",
                   timeout=20)
    assert out.returncode == 0, out.stderr
    return sorted(tuple(line.split(",")[:9] + line.split(",")[10:11])
                  for line in out.stdout.splitlines() if line)


def segments(inode):
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(f"jool64-{inode}-"))


def test_control_process_killed_then_taken_over(lab):
    entry = registry_entry(lab)
    control, workers = entry["pid"], worker_pids(entry)
    assert workers and all(alive(p) for p in workers)
    sink, source = start_transfer(lab, 24 << 20, 3 << 20)      # 8 s at 3 MB/s
    before = sessions(lab)
    assert any(f"{PORT}" in row[8] for row in before), before

    os.kill(control, signal.SIGKILL)
    assert wait_until(lambda: not alive(control), 5)
    # Meanwhile the workers go on forwarding: no control process, bytes still arrive.
    start = received_bytes(lab)
    time.sleep(1.5)
    assert all(alive(p) for p in workers), "the workers died with their control process"
    assert received_bytes(lab) > start + (1 << 20), "forwarding stopped with the control"

    # Any jool command starts a new control process, which takes the instance over.
    after = sessions(lab)
    assert after == before
    new = registry_entry(lab)
    assert new["pid"] != control and alive(new["pid"])
    assert worker_pids(new) == workers              # the same processes, adopted
    finish_transfer(sink, source, 60)

    # The adopted workers are supervised: one killed now is replaced.
    os.kill(workers[0], signal.SIGKILL)
    assert wait_until(lambda: worker_pids(registry_entry(lab))[0] != workers[0], 2.0), \
        "an adopted worker was not restarted"

    # And the new control process removes everything the old one made.
    inode = lab.inode("jool")
    survivors = worker_pids(registry_entry(lab))
    assert lab.jool("instance", "remove", timeout=20).returncode == 0
    assert wait_until(lambda: not any(alive(p) for p in survivors + workers), 5)
    assert wait_until(lambda: segments(inode) == [], 5), segments(inode)
    tables = lab.exec("jool", "nft", "list", "tables", timeout=10).stdout
    assert "jool" not in tables, tables


def test_worker_killed_under_load_is_back_within_a_second(lab):
    workers = worker_pids(registry_entry(lab))
    sink, source = start_transfer(lab, 16 << 20, 4 << 20)      # 4 s
    before = sessions(lab)
    # The busiest worker carries the transfer.
    victim = max(workers, key=lambda p: int(
        Path(f"/proc/{p}/schedstat").read_text().split()[0]))
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_until(lambda: victim not in worker_pids(registry_entry(lab)) and all(
        alive(p) for p in worker_pids(registry_entry(lab))), 1.0), \
        f"worker {victim} not replaced within a second"
    restart = time.monotonic() - killed
    assert sessions(lab) == before                  # not one session lost
    finish_transfer(sink, source, 60)
    print(f"worker {victim} replaced in {restart:.2f} s")


@pytest.mark.parametrize("how", ["remove", "flush"])
def test_instance_stopped_under_load_leaves_nothing(lab, how):
    inode = lab.inode("jool")
    entry = registry_entry(lab)
    control, workers = entry["pid"], worker_pids(entry)
    sink, source = start_transfer(lab, 64 << 20, 8 << 20)      # still going when stopped
    time.sleep(1.0)
    assert segments(inode)
    result = lab.jool("instance", how, timeout=20)
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: not any(alive(p) for p in workers + [control]), 5), \
        [p for p in workers + [control] if alive(p)]
    assert wait_until(lambda: segments(inode) == [], 5), segments(inode)
    assert "jool" not in lab.exec("jool", "nft", "list", "tables", timeout=10).stdout
    assert not lab.exec("jool", "ip", "link", "show", "jool-back-tx", timeout=10).stdout
    # The kernel has the addresses back: the transfer stalls (no translator), and
    # the namespace answers a ping to its own IPv4 address as any host does.
    ping = lab.exec("n4", "ping", "-c", "1", "-W", "2", "192.0.2.2", timeout=10)
    assert ping.returncode == 0, ping.stdout
    source.kill()
    sink.kill()
