"""tools/jool-completion.bash, driven the way bash drives it."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "jool-completion.bash"


def complete(line, tmp_path):
    """COMPREPLY for the command line `line` (the cursor at its end)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    shim = tmp_path / "jool"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m jool.cli.jool \"$@\"\n")
    shim.chmod(0o755)
    program = (f"source {shlex.quote(str(SCRIPT))}\n"
               f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
               f"COMP_CWORD={len(words) - 1}\n"
               "_jool_complete\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}",
               PYTHONPATH=str(ROOT), JOOL_CONTROL_SOCKET="jool-test/none-completion")
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60, check=True).stdout
    return sorted(w for w in out.split("\n") if w)


pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")


@pytest.mark.parametrize("line,expect", [
    ("jool ", ["bib", "file", "global", "instance", "joold", "pool4", "session", "stats"]),
    ("jool p", ["pool4"]),
    ("jool -i alpha po", ["pool4"]),
    ("jool pool4 ", ["add", "display", "flush", "remove"]),
    ("jool pool4 add --m", ["--mark", "--max-iterations"]),
    ("jool -i x bib display --n", ["--no-headers", "--numeric"]),
    ("jool global update ss-f", ["ss-flush-asap", "ss-flush-deadline"]),
    ("jool global update manually-enabled ", ["false", "true"]),
    ("jool --ver", ["--version"]),
])
def test_completion(tmp_path, line, expect):
    assert complete(line, tmp_path) == expect


def test_file_names(tmp_path):
    (tmp_path / "edge.json").write_text("{}")
    assert "edge.json" in complete("jool file handle ed", tmp_path)
    assert complete("jool -f ed", tmp_path) == ["edge.json"]
