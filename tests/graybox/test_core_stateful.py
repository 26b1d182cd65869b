"""Jool's graybox vectors against the stateful core alone (no sockets): the
outgoing tuple comes from the BIB, configured as shared/graybox/README.md says.

Every row is sent in manifest order on one translator (later rows may rely on
state the earlier ones left); the run happens once, in a module fixture, so that
selecting or reordering cases does not change what each row meets. Each case then
compares its row's first output with the expected packet."""

import gc

import pytest

from jool._fast.pipeline import OutKind, Translator, Verdict
from graybox.manifest import mismatches, rows
from sharedpaths import shared_dir

tables_mod = pytest.importorskip("jool._fast.tables")

SHARED = shared_dir()
ROWS = list(rows(SHARED)) if SHARED else []

POOL4 = "192.0.2.2"
STATIC_BIB = (                     # README: (proto, IPv6 client, port, pool4 port)
    ("tcp", "2001:db8::5", 2000, 2000),
    ("udp", "2001:db8::5", 2000, 2000),
    ("icmp", "2001:db8::5", 1, 1),
    ("udp", "2001:db8:1::5", 1001, 1000),
    ("udp", "2001:db8::5", 1003, 1002),
)
STEP_MS = 100                      # the manifest's wait between rows


@pytest.fixture(scope="module")
def run(shared):
    """Configure the README's translator, send every row in order, keep the results."""
    tables = tables_mod.Tables.create(capacity=1 << 12)
    try:
        t = Translator(tables=tables, pool6="64:ff9b::/96", own4=POOL4, own6="2001:db8::1")
        for proto in ("tcp", "udp", "icmp"):
            t.pool4_add(proto, POOL4 + "/32", 1, 3000)
        for proto, addr6, port6, port4 in STATIC_BIB:
            t.bib_add(proto, addr6, port6, POOL4, port4)
        results = {}
        for i, row in enumerate(ROWS):
            verdict, reason, outputs = t.translate(row.send, now_ms=i * STEP_MS, mark=0)
            results[row.name] = (verdict, reason, [(k, bytes(b)) for k, b in outputs])
        yield t, results
        del t
    finally:
        gc.collect()
        try:
            tables.close()
        finally:
            tables.unlink()


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_graybox_row(run, row):
    _, results = run
    verdict, reason, outputs = results[row.name]
    assert verdict == Verdict.TRANSLATED, f"verdict {verdict}, reason {reason}"
    assert outputs, "no output"
    kind, got = outputs[0]
    assert kind == (OutKind.IPV4 if row.direction == "64" else OutKind.IPV6)
    assert mismatches(got, row.expect, row.ignore) == []


def test_manifest_has_all_24_rows(shared):
    assert len(ROWS) == 24


def test_state_after_the_run(run):
    """The rows ran through the BIB: the static entries are intact and no dynamic
    entry was needed; the flows that the rows opened have their sessions."""
    t, _ = run
    for proto in ("tcp", "udp", "icmp"):
        want = sorted((a6, p6, POOL4, p4) for pr, a6, p6, p4 in STATIC_BIB if pr == proto)
        got = sorted((str(a6), p6, str(a4), p4) for a6, p6, a4, p4, static in t.bib_entries(proto)
                     if static)
        assert got == want, proto
        assert all(static for *_, static in t.bib_entries(proto)), proto
    udp = [(s["src6"], s["sport6"], s["dst4"], s["dport4"]) for s in t.sessions("udp", 2400)]
    assert ("2001:db8::5", 2000, "192.0.2.5", 4000) in [(str(a), b, str(c), d) for a, b, c, d in udp]
    assert len(t.sessions("tcp", 2400)) == 1
    assert len(t.sessions("icmp", 2400)) == 1
