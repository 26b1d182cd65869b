"""Running `jool` in-process for the CLI tests."""

import contextlib
import io
import os
import shlex
import sys
from dataclasses import dataclass


sys.path.insert(0, os.path.dirname(__file__))

from jool.cli.jool import main  # noqa: E402


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_jool(args):
    """main(argv) with captured stdout/stderr; `args` is a list or a shell string."""
    if isinstance(args, str):
        args = shlex.split(args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return Result(code, out.getvalue(), err.getvalue())
