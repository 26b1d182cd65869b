"""Where the steering repository's shared/ (spec, graybox vectors) lies."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shared_dir():
    """The steering repo's shared/ (spec, graybox vectors) laid beside the project."""
    for candidate in (os.environ.get("JOOL_SHARED"), ROOT.parent / "shared",
                      ROOT.parent.parent / "shared"):
        if candidate and (Path(candidate) / "graybox").is_dir():
            return Path(candidate)
    return None
