import os
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import shutil

import pytest

from netns_support import JoolEnv, Namespace


def _require_root():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespace tests need root and iproute2")


@pytest.fixture
def jool_env(tmp_path):
    env = JoolEnv(tmp_path)
    yield env
    env.kill_controls()


@pytest.fixture
def netns_factory():
    _require_root()
    made = []

    def make(prefix="jt"):
        ns = Namespace(prefix)
        made.append(ns)
        return ns
    yield make
    for ns in made:
        ns.remove()
