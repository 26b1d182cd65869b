import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fakecontrol import FakeControl, FakeInstance  # noqa: E402



from cli_support import Result, run_jool  # noqa: E402,F401


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No control process: a socket name nobody listens on, a private registry, and
    a control command that fails at once instead of starting a real one."""
    monkeypatch.setenv("JOOL_CONTROL_SOCKET", f"jool-test/none-{os.getpid()}-{id(tmp_path)}")
    monkeypatch.setenv("JOOL_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("JOOL_CONTROL_COMMAND", "false")
    return tmp_path


@pytest.fixture
def fake(isolated, monkeypatch):
    server = FakeControl()
    monkeypatch.setenv("JOOL_CONTROL_SOCKET", server.name)
    yield server
    server.close()


def populate(server):
    """The standard world of the conformance tests."""
    inst = FakeInstance("default", "netfilter", "64:ff9b::/96")
    server.instances["default"] = inst
    inst.pool4 = [[0, "TCP", "192.0.2.1", 100, 200, 1024, False]]
    inst.bib["tcp"] = [["2001:db8::6", 8080, "192.0.2.1", 150, True]]
    inst.sessions["tcp"] = [{
        "src6": "2001:db8::6", "sport6": 8080, "dst6": "64:ff9b::c633:6407", "dport6": 443,
        "src4": "192.0.2.1", "sport4": 150, "dst4": "198.51.100.7", "dport4": 443,
        "proto": "tcp", "state": "ESTABLISHED", "expires_in_ms": 7198312}]
    inst.sessions["udp"] = [{
        "src6": "2001:db8::7", "sport6": 5000, "dst6": "64:ff9b::c633:6408", "dport6": 53,
        "src4": "192.0.2.1", "sport4": 61000, "dst4": "198.51.100.8", "dport4": 53,
        "proto": "udp", "state": None, "expires_in_ms": 300000}]
    inst.sessions["icmp"] = [{
        "src6": "2001:db8::8", "sport6": 5831, "dst6": "64:ff9b::c000:208", "dport6": 5831,
        "src4": "192.0.2.1", "sport4": 61500, "dst4": "192.0.2.8", "dport4": 61500,
        "proto": "icmp", "state": None, "expires_in_ms": 59100}]
    for row in inst.stats:
        row[1] = {"JSTAT_RECEIVED6": 1520, "JSTAT_RECEIVED4": 1388, "JSTAT_SUCCESS": 2890,
                  "JSTAT_BIB_ENTRIES": 1, "JSTAT_SESSIONS": 3}.get(row[0], 0)
    return inst


@pytest.fixture
def world(fake):
    populate(fake)
    return fake


@pytest.fixture
def jool():
    return run_jool
