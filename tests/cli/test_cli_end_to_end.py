"""The `jool` client against the real control process (python -m jool.control),
on a private abstract socket and registry directory.  Everything created is
removed afterwards and the control process is stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_support import run_jool

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not (ROOT / "jool" / "control" / "__main__.py").exists(),
                                reason="the control process is not there yet")

POOL4_BORDER = "+------------+-------+--------------------+-----------------+-------------+\n"


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def private(monkeypatch, tmp_path):
    name = f"jool-test/e2e-{os.getpid()}-{tmp_path.name}"
    monkeypatch.setenv("JOOL_CONTROL_SOCKET", name)
    monkeypatch.setenv("JOOL_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.delenv("JOOL_CONTROL_COMMAND", raising=False)
    monkeypatch.setenv("JOOL_DATAPLANE", "0")      # control plane only: no interfaces
    return tmp_path


@pytest.fixture
def control(private):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(private / "control.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jool.control", "--foreground",
                             "--persist"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: proc.poll() is None and _listening()), "no control process"
        yield proc
    finally:
        run_jool("instance flush")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _listening():
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect("\0" + os.environ["JOOL_CONTROL_SOCKET"])
        return True
    except OSError:
        return False
    finally:
        sock.close()


def ok(line):
    r = run_jool(line)
    assert r.code == 0, (line, r.err)
    return r.out


def test_configuration_round_trip(control):
    assert ok("instance add --pool6 64:ff9b::/96") == ""
    assert ok("instance status") == "Running\n"
    rows = ok("instance display --csv --no-headers").splitlines()
    assert len(rows) == 1 and rows[0].endswith(",default,netfilter")

    # global
    assert ok("global update udp-timeout 0:10:00") == ""
    assert ok("g u manually false") == ""
    out = ok("global display")
    assert "  udp-timeout: 0:10:00 (HH:MM:SS)\n" in out
    assert "  manually-enabled: false\n" in out
    assert "  pool6: 64:ff9b::/96\n" in out
    csv = ok("global display --csv")
    assert csv.startswith("Field,Value\nmanually-enabled,FALSE\npool6,64:ff9b::/96\n")
    r = run_jool("global update lowest-ipv6-mtu 1000")
    assert r.code == 22 and r.err.startswith("Error: The kernel module returned error 22: ")
    r = run_jool("global update pool6 2001:db8::/96")
    assert r.code == 22

    # pool4
    assert ok("pool4 add --tcp 192.0.2.1 100-200") == ""
    assert ok("pool4 add --tcp 192.0.2.8/31 1-65535 --mark 1 --max-iterations infinity") == ""
    assert ok("pool4 display") == (
        POOL4_BORDER
        + "|       Mark | Proto |     Max iterations |         Address |       Ports |\n"
        + POOL4_BORDER
        + "|          1 |   TCP |   Infinite (fixed) |       192.0.2.8 |     1-65535 |\n"
        + "|            |       |                    |       192.0.2.9 |     1-65535 |\n"
        + POOL4_BORDER
        + "|          0 |   TCP |       1024 ( auto) |       192.0.2.1 |   100-  200 |\n"
        + POOL4_BORDER)
    assert ok("pool4 display --csv --no-headers") == (
        "1,TCP,192.0.2.8,1,65535,infinite,1\n1,TCP,192.0.2.9,1,65535,infinite,1\n"
        "0,TCP,192.0.2.1,100,200,1024,0\n")
    assert run_jool("pool4 add --tcp 192.0.2.0/16 1-2").code == 249
    assert run_jool("pool4 add --tcp 192.0.2.1 1-2 --max-iterations 0").code == 22

    # bib
    assert ok("bib add 2001:db8::1#80 192.0.2.1#150") == ""
    assert ok("bib display --numeric") == "[Static TCP] 192.0.2.1#150 - 2001:db8::1#80\n"
    assert ok("bib display --numeric --csv") == (
        "Protocol,IPv6 Address,IPv6 L4-ID,IPv4 Address,IPv4 L4-ID,Static?\n"
        "TCP,2001:db8::1,80,192.0.2.1,150,1\n")
    r = run_jool("bib add 2001:db8::2#80 198.51.100.1#150")
    assert r.code == 22
    r = run_jool("bib add 2001:db8::1#80 192.0.2.1#160")
    assert r.code == 17
    r = run_jool("bib remove 2001:db8::9#9")
    assert r.code == 3
    assert ok("bib remove 192.0.2.1#150") == ""
    assert ok("bib display --numeric") == ""

    # stats and sessions of an idle instance
    assert len(ok("stats display --all").splitlines()) == 69
    assert ok("session display --numeric") == "-" * 33 + "\n"

    # duplicates and removal
    assert run_jool("instance add --pool6 64:ff9b::/96").code == 17
    assert run_jool("instance remove nothere").code == 3
    assert ok("pool4 flush") == ""
    assert ok("instance remove") == ""
    assert ok("instance status") == "Dead\n(Instance 'default' does not exist.)\n"


def test_iptables_instances_and_file(control, tmp_path):
    assert ok("instance add --iptables --pool6 64:ff9b::/96 alpha") == ""
    assert ok("instance add --iptables -6 64:ff9b::/96 beta") == ""
    config = tmp_path / "edge.json"
    config.write_text(json.dumps({
        "instance": "edge", "framework": "iptables",
        "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:10:00"},
        "pool4": [{"protocol": "UDP", "prefix": "198.51.100.8/30"}]}))
    assert ok(f"file handle {config}") == ""
    assert "udp-timeout,0:10:00\n" in ok("-i edge global display --csv")
    assert ok("-i edge pool4 display --udp --csv --no-headers").count(",UDP,") == 4
    names = sorted(line.split(",")[1] for line in
                   ok("instance display --csv --no-headers").splitlines())
    assert names == ["alpha", "beta", "edge"]
    assert ok("-i x instance flush") == ""
    assert ok("instance display --csv --no-headers") == ""


def test_instance_add_starts_the_control_process(private):
    """No control process: `instance add` launches `python -m jool.control --daemon`,
    and the process exits once its last instance is gone."""
    assert run_jool("stats display").code == 3
    assert ok("instance add --pool6 64:ff9b::/96") == ""
    registry = private / "registry"
    files = list(registry.glob("*.json"))
    assert len(files) == 1
    pid = json.loads(files[0].read_text())["pid"]
    try:
        assert ok("instance status") == "Running\n"
        assert ok("instance remove") == ""

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        assert wait_until(gone, 10), "the control process did not exit when emptied"
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
