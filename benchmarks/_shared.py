"""Paths and the peer-engine harness shared by the benchmark scripts (imported from beside them)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CONSTRAIN_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
RESULTS = ROOT / "benchmarks" / "results"


def load_peerbench() -> Any:
    """``../shared/peerbench/peerbench.py`` as a module: every engine measured through the same adapters."""
    spec = importlib.util.spec_from_file_location("peerbench", SHARED / "peerbench" / "peerbench.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
