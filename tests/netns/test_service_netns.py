"""The control process run the way jool-control@.service runs it: its ExecStart
line, inside the unit's network namespace, with $NOTIFY_SOCKET. systemd itself is
not needed: a datagram socket here stands in for it."""

import os
import shlex
import signal
import socket
import subprocess

from jool.control.service import render_units


def exec_start(unit_text):
    line = next(l for l in unit_text.splitlines() if l.startswith("ExecStart="))
    return shlex.split(line[len("ExecStart="):])


def test_control_unit_command_notifies_ready_and_serves(jool_env, netns_factory, tmp_path):
    ns = netns_factory("ju")
    command = exec_start(render_units()["jool-control@.service"])
    notify_path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(20)
    env = dict(jool_env.env, NOTIFY_SOCKET=notify_path, JOOL_CONTROL_COMMAND="false",
               JOOL_METRICS_LISTEN="127.0.0.1:9464")
    control = subprocess.Popen(["ip", "netns", "exec", ns.name, *command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.recv(100).startswith(b"READY=1")
        # Ready means listening: the first command answers (--persist: no
        # instance yet, and it stays).
        empty = jool_env.jool(ns, "instance", "status")
        assert empty.returncode == 0 and empty.stdout.startswith("Dead"), empty
        added = jool_env.jool(ns, "instance", "add", "--pool6", "64:ff9b::/96")
        assert added.returncode == 0, added.stderr
        metrics = ns.exec("curl", "-sS", "--max-time", "5", "http://127.0.0.1:9464/metrics")
        assert metrics.returncode == 0 and metrics.stdout.endswith("# EOF\n"), metrics
        removed = jool_env.jool(ns, "instance", "remove")
        assert removed.returncode == 0, removed.stderr
        assert control.poll() is None, "--persist: it must outlive its last instance"
    finally:
        listener.close()
        if control.poll() is None:
            os.kill(control.pid, signal.SIGTERM)      # systemctl stop (KillMode=process)
            try:
                control.wait(10)
            except subprocess.TimeoutExpired:
                control.kill()
                control.wait(5)
    assert control.returncode == 0, control.stderr.read()
