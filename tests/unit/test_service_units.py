"""The systemd units (jool/control/service.py), installed by tools/install-units
into a temporary directory and checked with `systemd-analyze verify`, and the
readiness notification the control unit (Type=notify) waits for."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jool.control import service

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None,
                                   reason="systemd-analyze is absent (Debian package systemd)")


def install(unit_dir, *extra):
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "install-units"),
                             "--unit-dir", str(unit_dir), "--no-reload", *extra],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def verify(unit_dir, namespace="jt-ns1"):
    """systemd-analyze verify of both units instantiated for `namespace` (a
    template alone cannot be verified: the instances are links to it)."""
    names = []
    for template in ("jool-control@.service", "joold@.service"):
        instance = unit_dir / template.replace("@.", f"@{namespace}.")
        instance.symlink_to(template)
        names.append(str(instance))
    return subprocess.run([ANALYZE, "verify", *names], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, SYSTEMD_LOG_COLOR="0"))


@needs_analyze
def test_installed_units_verify_cleanly(tmp_path):
    unit_dir = tmp_path / "units"
    out = install(unit_dir).stdout
    assert f"wrote {unit_dir}/jool-control@.service" in out
    control = (unit_dir / "jool-control@.service").read_text()
    joold = (unit_dir / "joold@.service").read_text()
    assert f"ExecStart={sys.executable} -m jool.control --foreground --persist" in control
    assert f"Environment=PYTHONPATH={ROOT}" in control
    for text in (control, joold):
        assert "NetworkNamespacePath=/run/netns/%i" in text
    assert "Type=notify" in control and "KillMode=process" in control
    assert "Requires=jool-control@%i.service" in joold
    assert ("ExecStart=" + sys.executable + " -m jool.cli.joold /etc/jool/%i/netsocket.json "
            "/etc/jool/%i/modsocket.json") in joold
    result = verify(unit_dir)
    # verify only warns (exit 0) about a setting it ignores: clean means silent too.
    assert result.returncode == 0 and result.stdout + result.stderr == "", \
        result.stdout + result.stderr


@needs_analyze
def test_verify_would_catch_a_broken_unit(tmp_path):
    """The check above means something: units naming a Python that does not exist
    do not verify."""
    unit_dir = tmp_path / "units"
    install(unit_dir, "--python", str(tmp_path / "no-such-python"))
    result = verify(unit_dir)
    assert result.returncode != 0
    assert "no-such-python" in result.stderr


def test_reinstalling_replaces_the_units(tmp_path):
    unit_dir = tmp_path / "units"
    service.install(unit_dir, python="/usr/bin/python3", reload=False)
    service.install(unit_dir, python=sys.executable, reload=False)
    assert sorted(p.name for p in unit_dir.iterdir()) == ["jool-control@.service",
                                                          "joold@.service"]
    assert sys.executable in (unit_dir / "jool-control@.service").read_text()


def test_ready_is_notified_only_under_systemd(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert service.notify_ready() is False
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert service.notify_ready() is True
        assert listener.recv(100).split(b"\n")[0] == b"READY=1"
