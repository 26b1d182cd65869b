"""A short, bounded run of tools/fuzz (issue 8): libFuzzer through atheris over the
AddressSanitizer + checked build of the stateful core, from the seed corpus alone.
The harness itself checks every input (counted rejection or well-formed output,
no refused packet access); here the run must end with no crash and its figures
must show that every packet was accounted for.

The ASan kernels are built by tools/run-tests (`tools/fuzz --build-only`); if they
are stale the harness rebuilds them first, which takes about a minute more."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tools" / "fuzz"
RUNS = 50_000
SECONDS = 60            # libFuzzer stops at whichever of RUNS or SECONDS comes first
MIN_RUNS = 5_000        # on a loaded machine fewer than RUNS fit in SECONDS; not fewer than this


def test_short_fuzz_run_finds_no_crash(tmp_path):
    pytest.importorskip("atheris", reason="atheris is not installed (tools/run-tests installs it)")
    figures_file = tmp_path / "figures.json"
    cmd = [sys.executable, str(FUZZ), "--runs", str(RUNS), "--max-total-time", str(SECONDS),
           "--seed", "1", "--corpus", str(tmp_path / "corpus"),
           "--artifacts", str(tmp_path / "artifacts"), "--json", str(figures_file)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 300)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
    if done.returncode == 2 and "no AddressSanitizer build" in done.stderr:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, tail
    figures = json.loads(figures_file.read_text())
    harness = figures["harness"]
    assert figures["asan"] is True
    assert figures["crashes"] == 0, tail
    assert figures["inputs_run"] >= MIN_RUNS, tail
    assert figures["coverage_edges"] and figures["coverage_edges"] > 500, \
        "libFuzzer saw no coverage of the kernels: " + tail
    assert harness["every_packet_accounted"], harness
    assert harness["translated"] > 0 and harness["rejected"] > 0, harness
    assert harness["bounds_violations"] == 0
    assert harness["stale_hints"] == 0
    assert harness["build_checked"] is True
    assert harness["packets"] == harness["translated"] + harness["rejected"]
