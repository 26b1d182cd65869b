"""man/jool.8 must be what tools/gen-man makes from the current parsers."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("program", ["jool", "joold"])
def test_manpage_is_current(program):
    pytest.importorskip("argparse_manpage")
    from jool.cli.manpage import render
    page = (ROOT / "man" / f"{program}.8").read_text()
    assert page == render(program), f"man/{program}.8 is stale: run tools/gen-man"


def test_manpage_covers_every_operation():
    page = (ROOT / "man" / "jool.8").read_text()
    for command in ("jool instance", "jool stats", "jool global update", "jool pool4",
                    "jool bib", "jool session", "jool file", "jool joold"):
        assert f"COMMAND \\fI\\,'{command}" in page, command
    for option in (r"\-\-max\-iterations", r"\-\-no\-headers", r"\-\-numeric",
                   r"\-\-pool6", r"\-\-explain"):
        assert option in page
