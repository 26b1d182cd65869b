"""man/jool.8 and man/joold.8, generated from the CLIs' argparse parsers with
argparse-manpage.

`tools/gen-man` writes it; tests/cli/test_manpage.py fails when it is stale.  The
rendering is made reproducible: fixed date, fixed 80-column formatter width.
"""

import os

from jool.cli.jool import VERSION, build_parsers

MAN_DATE = "2024-01-01"


def render(program="jool"):
    from argparse_manpage.manpage import Manpage
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        if program == "joold":
            from jool.cli.joold import build_parser
            parser = build_parser()
            description = "session synchronization daemon of the userspace NAT64"
        else:
            parser = build_parsers()
            description = "userspace NAT64 (Jool 4.1.9 compatible) configuration client"
        page = Manpage(parser, _data={
            "date": MAN_DATE,
            "project_name": "jool-userspace",
            "version": VERSION,
            "manual_title": "NAT64 administration",
            "manual_section": 8,
            "description": description,
        })
        return str(page)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
