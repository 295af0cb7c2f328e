"""The packed allowed-token bitmask shared by matchers, kernels and samplers.

Layout (the one vLLM, SGLang and XGrammar use): an int32 array of shape ``[batch, ceil(vocab / 32)]``;
token ``i`` is allowed in row ``r`` when bit ``i % 32`` of word ``i // 32`` is set. Words are int32, so
bit 31 is the sign bit.

This module never imports torch at import time: matchers write into any int32 buffer (numpy array or
CPU torch tensor), and only :func:`allocate_bitmask` creates a torch tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Int32Array = npt.NDArray[np.int32]


def bitmask_words(vocab_size: int) -> int:
    """Number of int32 words needed for ``vocab_size`` tokens."""
    return (vocab_size + 31) // 32


def allocate_bitmask(batch: int, vocab_size: int) -> Any:
    """A ``torch.int32`` tensor ``[batch, ceil(vocab_size / 32)]`` with every token allowed (all bits set)."""
    import torch

    return torch.full((batch, bitmask_words(vocab_size)), -1, dtype=torch.int32)


def as_rows(buffer: Any) -> Int32Array:
    """A writable 2-D int32 numpy view of ``buffer`` (numpy array or CPU torch tensor), without copying."""
    if isinstance(buffer, np.ndarray):
        arr = buffer
    else:
        device = getattr(buffer, "device", None)
        if device is not None and getattr(device, "type", "cpu") != "cpu":
            raise ValueError(
                f"fill the bitmask in a CPU buffer and copy it to {device}: matchers run on the CPU "
                "(allocate it with constrain.allocate_bitmask, optionally pinned)"
            )
        arr = buffer.numpy() if hasattr(buffer, "numpy") else np.asarray(buffer)
    if arr.dtype != np.int32:
        raise TypeError(f"bitmask must be int32, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"bitmask must be 1-D or 2-D, got shape {arr.shape}")
    return arr


def ids_to_bitmask(token_ids: npt.ArrayLike, vocab_size: int) -> Int32Array:
    """One bitmask row (int32 words) with exactly ``token_ids`` allowed."""
    ids = np.asarray(token_ids, dtype=np.int64)
    words = np.zeros(bitmask_words(vocab_size), dtype=np.uint32)
    if ids.size:
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError("token id out of range")
        np.bitwise_or.at(words, ids >> 5, (np.uint32(1) << (ids & 31).astype(np.uint32)))
    return words.view(np.int32)


def bitmask_to_ids(row: npt.ArrayLike, vocab_size: int | None = None) -> npt.NDArray[np.int64]:
    """The allowed token ids of one bitmask row, ascending."""
    words = np.ascontiguousarray(np.asarray(row, dtype=np.int32)).view(np.uint32)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    ids = np.flatnonzero(bits)
    if vocab_size is not None:
        ids = ids[ids < vocab_size]
    return ids.astype(np.int64)
