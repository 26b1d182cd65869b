"""Jool's 24 graybox NAT64 rows through real namespaces and the running translator
(tools/graybox-run), in strict mode: the expected packet arrives, byte for byte
under the README's rules, and nothing else (ND and MLD aside) reaches either client."""

import importlib.machinery
import importlib.util
import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = 24


def _load(tool):
    name = "jool_tool_" + tool.replace("-", "_")
    if name not in sys.modules:
        loader = importlib.machinery.SourceFileLoader(name, str(ROOT / "tools" / tool))
        spec = importlib.util.spec_from_loader(name, loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
    return sys.modules[name]


def test_all_graybox_rows_pass_strict(shared):
    if os.geteuid() != 0:
        pytest.skip("the graybox runner needs root")
    missing = [c for c in ("ip", "nft", "ping") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"missing commands: {' '.join(missing)} (tools/demo installs them)")
    runner = _load("graybox-run")
    prefix = f"gb{secrets.token_hex(3)}-"
    lines = []
    results = runner.run(strict=True, prefix=prefix, shared=shared, ping_timeout=10.0,
                         log=lines.append)
    report = "\n".join(lines)
    # The lab is gone with everything it started, pass or fail.
    left = [n for n in os.listdir("/run/netns") if n.startswith(prefix)] \
        if os.path.isdir("/run/netns") else []
    assert not left, left
    assert len(results) == ROWS, report
    failed = [r for r in results if not r.passed]
    assert not failed, f"{len(failed)} of {ROWS} rows fail:\n{report}"
