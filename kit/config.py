"""Settings read in one place: the FAST switch, where data and cached artifacts live.

``KIT_FAST=1`` shrinks data and training steps so the test suite can execute every
notebook in seconds; unset (the default) is the full run learners see.

>>> from kit.config import FAST, pick
>>> steps = pick(full=200, fast=4)   # 200 normally, 4 under KIT_FAST=1
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("KIT_DATA_DIR", ROOT / "data"))
EXPENSE_POLICY = DATA_DIR / "expense_policy"

FAST: bool = os.environ.get("KIT_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}
SEED: int = int(os.environ.get("KIT_SEED", "42"))

# Artifacts shared across notebooks (fine-tuned models, mined negatives). FAST and full
# runs never share a folder, so a quick test run cannot leave a half-trained model behind
# for the full run to pick up.


def cache_root() -> Path:
    """The cache folder, read from ``KIT_CACHE_DIR`` now (tests point it at a temporary folder).

    >>> cache_root().name in ("fast", "full")
    True
    """
    return Path(os.environ.get("KIT_CACHE_DIR", ROOT / ".cache")) / ("fast" if FAST else "full")


def pick(full: T, fast: T) -> T:
    """Return ``fast`` under ``KIT_FAST=1`` and ``full`` otherwise.

    >>> pick(full=1000, fast=10) in (1000, 10)
    True
    """
    return fast if FAST else full
