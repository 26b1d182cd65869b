import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


from sharedpaths import shared_dir  # noqa: E402


@pytest.fixture(scope="session")
def shared():
    path = shared_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("shared/ must lie beside the checkout in CI")
        pytest.skip("shared/ (spec and graybox vectors) is not beside this checkout")
    return path


@pytest.fixture(autouse=True, scope="session")
def _no_out_of_bounds_access():
    """Every packet access of the checked build stays inside its buffer."""
    from jool._fast.pipeline import bounds_violations
    before = bounds_violations()
    yield
    assert bounds_violations() == before, "a kernel touched memory outside a packet buffer"


@pytest.fixture(autouse=True, scope="session")
def _no_stale_prefetch_hint():
    """Every lookup of the checked build used its own packet's hash from the batch
    prefetch (a stale one is invisible otherwise: the slow path looks again)."""
    from jool._fast.nat64 import stale_hints
    before = stale_hints()
    yield
    assert stale_hints() == before, "a lookup used another packet's prefetch hash"
