"""Jool's graybox vectors against the translation core alone: no sockets, the
outgoing tuple given as the README's static BIB entries would give it. (The
stateful run, with the tuple from the BIB, belongs to the stateful core.)"""

import pytest

from jool._fast.pipeline import OutKind, Translator, Verdict
from graybox.manifest import mismatches, rows
from sharedpaths import shared_dir

SHARED = shared_dir()
ROWS = list(rows(SHARED)) if SHARED else []


def static_bib_mapping(row):
    """(map_addr, map_port) from the README's static BIB for the row's flow."""
    if row.direction == "64":
        return "192.0.2.2", 1 if "icmp6info" in row.name else 2000
    return "2001:db8::5", 1 if "icmp4info" in row.name else 2000


@pytest.fixture(scope="module")
def translator(shared):
    # The README's translator: pool6 64:ff9b::/96, its addresses 2001:db8::1 and 192.0.2.2.
    return Translator(pool6="64:ff9b::/96", own4="192.0.2.2", own6="2001:db8::1")


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_graybox_row(translator, row):
    addr, port = static_bib_mapping(row)
    verdict, reason, outputs = translator.translate(row.send, addr, port)
    assert verdict == Verdict.TRANSLATED, f"reason {reason}"
    assert len(outputs) == 1
    kind, got = outputs[0]
    assert kind == (OutKind.IPV4 if row.direction == "64" else OutKind.IPV6)
    assert mismatches(got, row.expect, row.ignore) == []


def test_manifest_has_all_24_rows(shared):
    assert len(ROWS) == 24
