"""logging-bib and logging-session (issue 9): one record per BIB entry and session
created and removed, received by a real syslog daemon (rsyslogd, parsing RFC 5424)
and written as JSON lines, while real traffic crosses the lab's translator."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from netns_support import UDP_ECHO4, jool_counter, running_lab

N4 = "192.0.2.5"
N4_VIA_POOL6 = "64:ff9b::c000:205"

# What rsyslogd parsed out of each datagram, one line each: APP-NAME, MSGID, PROCID,
# the structured data and the message.
RSYSLOG_CONF = """
global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log.sock" UseSpecialParser="off" ParseHostname="on")
template(name="fields" type="string"
         string="%app-name%|%msgid%|%procid%|%structured-data%|%msg%\\n")
*.* action(type="omfile" file="{dir}/received.log" template="fields")
"""

UDP_CLIENT = r"""
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("2001:db8::5", 4711))
s.settimeout(2)
s.sendto(b"hello", ("64:ff9b::c000:205", 7007))
print(s.recv(100).decode())
"""


@pytest.fixture
def rsyslog(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    if shutil.which("rsyslogd") is None:
        pytest.skip("needs rsyslogd (tools/run-tests installs rsyslog)")
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(dir=tmp_path))
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp_path / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while not (tmp_path / "log.sock").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "rsyslogd did not open its socket"
        time.sleep(0.05)
    try:
        yield tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def received(directory):
    """rsyslogd's lines as (app, msgid, procid, {sd params}, message)."""
    path = directory / "received.log"
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        app, msgid, procid, sd, message = line.split("|", 4)
        params = {}
        body = sd.strip("[]").split(" ", 1)
        assert body[0] == "jool@32473", sd
        for item in body[1].split('" '):
            name, _, value = item.partition('="')
            params[name] = value.rstrip('"')
        rows.append((app, msgid, procid, params, message.strip()))
    return rows


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_bib_and_session_records_reach_syslog_and_json(rsyslog):
    json_path = rsyslog / "sessions.jsonl"
    env = {"JOOL_SYSLOG_SOCKET": str(rsyslog / "log.sock"),
           "JOOL_SESSION_LOG_JSON": str(json_path)}
    with running_lab("slog", jool_env=env) as lab:
        for key in ("logging-bib", "logging-session"):
            assert lab.jool("global", "update", key, "true").returncode == 0
        lab.spawn("n4", sys.executable, "-c", UDP_ECHO4)
        time.sleep(0.3)
        reply = lab.exec("n6", sys.executable, "-c", UDP_CLIENT, timeout=10)
        assert reply.stdout.strip() == "hello", reply.stderr

        def records(event):
            return [r for r in received(rsyslog) if r[3]["event"] == event
                    and r[3]["src6"] == "2001:db8::5" and r[3]["sport6"] == "4711"]
        assert wait_for(lambda: records("bib-created") and records("session-created"), 5), \
            received(rsyslog)
        (app, msgid, _, bib, message), = records("bib-created")
        assert (app, msgid) == ("jool", "BIB")
        assert (bib["proto"], bib["src4"], bib["static"]) == ("UDP", "192.0.2.2", "false")
        port4 = bib["sport4"]
        assert message.endswith(f"- Mapped 2001:db8::5#4711 to 192.0.2.2#{port4} (UDP)"), \
            message
        assert message.startswith("default ") and "(GMT)" in message
        (app, msgid, _, session, message), = records("session-created")
        assert msgid == "SESSION"
        assert {k: session[k] for k in ("dst6", "dport6", "src4", "sport4", "dst4",
                                        "dport4")} == {
            "dst6": N4_VIA_POOL6, "dport6": "7007", "src4": "192.0.2.2", "sport4": port4,
            "dst4": N4, "dport4": "7007"}
        assert message.endswith(f"Added session 2001:db8::5#4711|{N4_VIA_POOL6}#7007|"
                                f"192.0.2.2#{port4}|{N4}#7007|UDP"), message

        # Removing the mapping removes its session: two more records.
        assert lab.jool("bib", "remove", "--udp", "2001:db8::5#4711").returncode == 0
        assert wait_for(lambda: records("bib-removed") and records("session-removed"), 5), \
            received(rsyslog)
        assert "Forgot 2001:db8::5#4711" in records("bib-removed")[0][4]
        assert "Forgot session 2001:db8::5#4711|" in records("session-removed")[0][4]

        # The same four, as JSON lines.
        lines = [json.loads(line) for line in json_path.read_text().splitlines()]
        ours = [r for r in lines if r["src6"] == "2001:db8::5" and r["sport6"] == 4711]
        assert [r["event"] for r in ours] == ["bib-created", "session-created",
                                              "session-removed", "bib-removed"], ours
        assert all(r["instance"] == "default" and r["time"].endswith("Z") for r in ours)
        assert ours[1]["dst4"] == N4 and ours[1]["dport4"] == 7007
        written = jool_counter(lambda *a: lab.jool(*a, timeout=20), "JOOL_LOG_RECORDS")
        assert written >= 8                 # four records, two destinations
        assert jool_counter(lambda *a: lab.jool(*a, timeout=20), "JOOL_LOG_LOST") == 0

        # Logging off: traffic goes on, nothing more is written.
        for key in ("logging-bib", "logging-session"):
            assert lab.jool("global", "update", key, "false").returncode == 0
        before = len(received(rsyslog))
        assert lab.exec("n6", sys.executable, "-c", UDP_CLIENT.replace("4711", "4712"),
                        timeout=10).stdout.strip() == "hello"
        time.sleep(0.5)
        assert len(received(rsyslog)) == before


def test_logging_debug_writes_a_line_per_packet(rsyslog):
    env = {"JOOL_SYSLOG_SOCKET": str(rsyslog / "log.sock")}
    with running_lab("dlog", jool_env=env) as lab:
        prefix = f"Jool NAT64/{lab.inode('jool'):x}/default: "
        assert lab.jool("global", "update", "logging-debug", "true").returncode == 0
        ping = lab.exec("n6", "ping", "-c", "2", "-i", "0.2", "-W", "2", N4_VIA_POOL6,
                        timeout=10)
        assert ping.returncode == 0, ping.stdout

        def debug_lines():
            return [r[4] for r in received_plain(rsyslog) if r[1] == "DEBUG"]
        assert wait_for(lambda: len([m for m in debug_lines() if "ICMPv6" in m]) >= 2, 5), \
            debug_lines()
        lines = debug_lines()
        assert all(m.startswith(prefix) for m in lines), lines
        assert any(m.startswith(prefix + "Translated: ICMPv6 2001:db8::5 type 128 code 0 -> "
                                f"{N4_VIA_POOL6}") for m in lines), lines
        assert any(m.startswith(prefix + "Translated: ICMP 192.0.2.5 type 0 code 0 -> "
                                "192.0.2.2") for m in lines), lines
        # A packet the translator does not take says why: UDP to a pool4 port that
        # no BIB entry maps goes back to the kernel.
        sent = lab.exec("n4", sys.executable, "-c",
                        "import socket\n"
                        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                        "s.bind(('192.0.2.5', 4999))\n"
                        "s.sendto(b'x', ('192.0.2.2', 2999))\n", timeout=10)
        assert sent.returncode == 0, sent.stderr
        passed = prefix + "Left to the kernel: UDP 192.0.2.5#4999 -> 192.0.2.2#2999 (29 bytes, "
        assert wait_for(lambda: any(m.startswith(passed + "JSTAT_BIB4_NOT_FOUND)")
                                    for m in debug_lines()), 5), \
            debug_lines()
        assert lab.jool("global", "update", "logging-debug", "false").returncode == 0
        count = len(debug_lines())
        assert lab.exec("n6", "ping", "-c", "1", "-W", "2", N4_VIA_POOL6,
                        timeout=10).returncode == 0
        time.sleep(0.5)
        assert len(debug_lines()) == count          # off again: silent


def received_plain(directory):
    """rsyslogd's lines as (app, msgid, procid, structured data, message)."""
    path = directory / "received.log"
    if not path.exists():
        return []
    return [tuple(part.strip() for part in line.split("|", 4))
            for line in path.read_text().splitlines()]
