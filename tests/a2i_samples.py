"""Where the tests find real A2I files: ``shared/a2i-samples`` beside the checkout.

``CLOSEDLOOP_A2I_SAMPLES`` names another folder; without it the folder beside the
repository comes first, then ``/work/shared/a2i-samples``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SAMPLES"]


def _samples_folder() -> Path:
    named = os.environ.get("CLOSEDLOOP_A2I_SAMPLES")
    if named:
        return Path(named)
    beside = Path(__file__).resolve().parents[2] / "shared" / "a2i-samples"
    fixed = Path("/work/shared/a2i-samples")
    return beside if beside.is_dir() or not fixed.is_dir() else fixed


SAMPLES = _samples_folder()
