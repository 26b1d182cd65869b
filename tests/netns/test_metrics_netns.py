"""The metrics endpoint of the control process (jool/control/metrics.py) scraped
over HTTP by real clients (curl, urllib) inside namespaces made here, and parsed by
prometheus_client's OpenMetrics parser: what it serves, what it refuses, that it
never holds the control process up, and that after a traffic run its counters and
`jool stats display`'s agree one for one."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from netns_support import SHA_SINK, SHA_SOURCE, running_lab

parser = pytest.importorskip("prometheus_client.openmetrics.parser")

NOBODY = 65534
CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Run inside the namespace: what the endpoint on argv[1] (host) argv[2] (port)
# answers to a scrape, to requests it must refuse, and while silent clients hold
# every connection slot. Prints one JSON object.
PROBE = r"""
import json, socket, sys, time, urllib.error, urllib.request
host, port, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = f"http://{host}:{port}"
out = {}

def status_of(request):
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()

code, headers, body = status_of(base + "/metrics")
out["scrape"] = {"status": code, "type": headers.get("Content-Type"), "body": body}
out["head"] = status_of(urllib.request.Request(base + "/metrics", method="HEAD"))[::2]
out["query"] = status_of(base + "/metrics?name[]=x")[0]
out["not_found"] = status_of(base + "/")[0]
out["post"] = status_of(urllib.request.Request(base + "/metrics", data=b"x"))[0]

def raw(data):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(data)
        return s.recv(100).split(b"\r\n")[0].decode()

out["too_long"] = raw(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
out["garbage"] = raw(b"\x16\x03\x01\x00\r\n\r\n")

# Silent clients fill every slot; one more is closed at once, not kept waiting.
silent = [socket.create_connection((host, port), timeout=5) for _ in range(cap)]
time.sleep(0.3)
extra = socket.create_connection((host, port), timeout=5)
started = time.monotonic()
out["over_cap"] = [extra.recv(10).decode(), round(time.monotonic() - started, 2)]
extra.close()
# They were accepted: the slots' owner is this probe, which now says so.
print(json.dumps(out), flush=True)
sys.stdin.readline()          # the test checks the control process still answers
for s in silent:
    s.close()
time.sleep(0.3)
print(json.dumps({"after": status_of(base + "/metrics")[0]}), flush=True)
"""


def ok(result):
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def families_of(text):
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def test_endpoint_serves_scrapes_refuses_the_rest_and_never_blocks(jool_env, netns_factory):
    from jool.control.metrics import MAX_CLIENTS
    ns = netns_factory("jm")
    jool_env.env["JOOL_METRICS_LISTEN"] = "127.0.0.1:9464"
    ok(jool_env.jool(ns, "instance", "add", "--pool6", "64:ff9b::/96"))
    ok(jool_env.jool(ns, "pool4", "add", "--tcp", "192.0.2.2", "1-3000"))
    probe = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", PROBE,
                              "127.0.0.1", "9464", str(MAX_CLIENTS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        found = json.loads(probe.stdout.readline() or "{}")
        # Every slot held by a silent client: the control process still answers.
        started = time.monotonic()
        cli_text = ok(jool_env.jool(ns, "stats", "display", "--openmetrics", user=NOBODY))
        assert time.monotonic() - started < 5
        probe.stdin.write("\n")
        probe.stdin.flush()
        after = json.loads(probe.stdout.readline() or "{}")
        probe.wait(timeout=20)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait(5)
    scrape = found["scrape"]
    assert scrape["status"] == 200 and scrape["type"] == CONTENT_TYPE
    # The same text by HTTP and by `jool stats display --openmetrics` (unprivileged).
    assert scrape["body"] == cli_text
    families = families_of(scrape["body"])
    ports = {s.labels["protocol"]: s.value for s in families["jool_pool4_ports"].samples}
    assert ports == {"tcp": 3000, "udp": 0, "icmp": 0}
    assert found["head"] == [200, ""]
    assert found["query"] == 200
    assert found["not_found"] == 404
    assert found["post"] == 405
    assert found["too_long"] == "HTTP/1.1 400 Bad Request"
    assert found["garbage"] == "HTTP/1.1 400 Bad Request"
    assert found["over_cap"][0] == "" and found["over_cap"][1] < 2
    assert after == {"after": 200}


def test_endpoint_off_by_default(jool_env, netns_factory):
    ns = netns_factory("jm")
    ok(jool_env.jool(ns, "instance", "add", "--pool6", "64:ff9b::/96"))
    listening = ok(ns.exec("ss", "-Htln", check=True))
    assert listening.strip() == "", listening


# ----------------------------------------------------------------- after traffic

N4, N4_VIA_POOL6, PORT = "192.0.2.5", "64:ff9b::c000:205", 5001
LISTEN = ("192.0.2.2", 9464)        # outside pool4's 1-3000: the kernel's, not claimed


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    for tool in ("ip", "nft", "ping", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    with running_lab("met", jool_env={"JOOL_METRICS_LISTEN": "%s:%d" % LISTEN,
                                      "JOOL_TABLE_CAPACITY": "65536"}) as lab:
        yield lab


def stats_csv(lab):
    out = lab.jool("stats", "display", "--all", "--userspace", "--csv", "--no-headers",
                   timeout=20)
    assert out.returncode == 0, out.stderr
    return {name: int(value) for name, value in
            (line.split(",") for line in out.stdout.splitlines() if line)}


def scrape(lab):
    """curl from n4, over the IPv4 link: as a Prometheus server on that side would."""
    out = lab.exec("n4", "curl", "-sS", "--max-time", "10", "-D", "/dev/stderr",
                   "http://%s:%d/metrics" % LISTEN, timeout=20)
    assert out.returncode == 0, out.stderr
    assert f"Content-Type: {CONTENT_TYPE}" in out.stderr
    return out.stdout


def sums_by_counter(families, names):
    from jool.control.counters import GAUGES
    from jool.control.metrics import metric_name
    sums = {}
    for name in names:
        family = families[metric_name(name)]
        if name not in GAUGES:
            assert {"instance", "worker"} == set(family.samples[0].labels), name
        sums[name] = int(sum(s.value for s in family.samples))
    return sums


def test_stats_display_and_metrics_agree_after_traffic(lab):
    ping = lab.exec("n6", "ping", "-6", "-n", "-c", "5", "-i", "0.2", "-W", "2",
                    N4_VIA_POOL6, timeout=20)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    sink = lab.spawn("n4", sys.executable, "-c", SHA_SINK, N4, str(PORT),
                     stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    source = lab.spawn("n6", sys.executable, "-c", SHA_SOURCE, N4_VIA_POOL6, str(PORT),
                       str(2 << 20), stdout=subprocess.PIPE, text=True)
    sent = source.communicate(timeout=60)[0].split()
    assert sink.communicate(timeout=10)[0].split() == sent and sent

    # Counters move while packets are still in flight (the last ACKs, a timer
    # pass): compare once two `stats display` around the scrapes are equal.
    for _attempt in range(10):
        before = stats_csv(lab)
        http_text = scrape(lab)
        cli_text = lab.jool("stats", "display", "--openmetrics", timeout=20).stdout
        after = stats_csv(lab)
        if before == after:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the counters never settled")

    http, cli = families_of(http_text), families_of(cli_text)
    assert sums_by_counter(http, before) == before
    assert sums_by_counter(cli, before) == before
    # 5 echo requests and replies, and the transfer (in super-frames: a few dozen).
    assert before["JSTAT_SUCCESS"] > 20 and before["JOOL_DP_RX_FRAMES"] > 20

    workers = int(http["jool_workers"].samples[0].value)
    assert workers >= 1
    assert int(http["jool_workers_running"].samples[0].value) == workers
    labels = {s.labels["worker"] for s in http["jool_received6"].samples}
    assert labels == {"control"} | {str(i) for i in range(workers)}
    # The workers translated the traffic (the control row only counts the
    # timer pass's own packets).
    success = {s.labels["worker"]: s.value for s in http["jool_success"].samples}
    assert sum(v for w, v in success.items() if w != "control") > 20

    def by(family, **labels):
        return [s.value for s in http[family].samples
                if all(s.labels.get(k) == v for k, v in labels.items())]
    assert by("jool_table_capacity", table="sessions") == [65536]
    assert by("jool_table_entries", table="sessions", protocol="tcp")[0] >= 1
    assert by("jool_table_entries", table="sessions", protocol="icmp")[0] >= 1
    assert sum(by("jool_table_entries", table="sessions")) == before["JSTAT_SESSIONS"]
    assert sum(by("jool_table_entries", table="bib")) == before["JSTAT_BIB_ENTRIES"]
    assert by("jool_pool4_ports", protocol="tcp") == [3000]
    tcp_bib = by("jool_table_entries", table="bib", protocol="tcp")[0]
    assert by("jool_pool4_ports_used", protocol="tcp") == [tcp_bib] and tcp_bib >= 2
    assert by("jool_sync_joold_attached") == [0]
