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


def freeze_heap() -> None:
    """Collect, then move every live object to the interpreter's permanent generation (``gc.freeze``), as
    serving processes do after start-up (vLLM does): later full collections then traverse only what was
    allocated since. Without it, each full collection walks torch's and transformers' ~290,000 objects,
    50-110 ms that land on whichever token is being timed when one comes due (11 of them in a grammar
    run with Llama 3)."""
    import gc

    gc.collect()
    gc.freeze()
