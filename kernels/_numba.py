"""numba loops for the CPU: 20-30x faster than the torch bit-unpacking path (measured on 2 cores at vocab
128,256: 11 µs against 300 µs per row), because they never materialise a per-token temporary.

Logits are handled through an integer view of their bits (float32 -> int32, bfloat16/float16 -> int16)
and -inf is written as a bit pattern, so bfloat16, which numba has no type for, needs no special case.
numba is imported on first use: ``import constrain.kernels`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch

# -inf bit patterns, as the signed integers of the same width.
NEG_INF_BITS: dict[torch.dtype, tuple[torch.dtype, int]] = {
    torch.float32: (torch.int32, -8388608),  # 0xFF800000
    torch.bfloat16: (torch.int16, -128),  # 0xFF80
    torch.float16: (torch.int16, -1024),  # 0xFC00
}


@cache
def _kernels() -> tuple[Callable[..., None], Callable[..., None]]:
    import numba

    @numba.njit(parallel=True, nogil=True, cache=False)
    def mask_rows(logits: Any, bitmask: Any, rows: Any, vocab_size: int, neg_inf: Any) -> None:
        width = logits.shape[1]
        limit = min(vocab_size, width)
        for i in numba.prange(rows.shape[0]):
            out = logits[rows[i]]
            words = bitmask[rows[i]]
            for w in range((limit + 31) // 32):
                base = w * 32
                top = min(32, limit - base)
                word = words[w]
                if word == -1 and top == 32:
                    continue
                for b in range(top):
                    if (word >> b) & 1 == 0:
                        out[base + b] = neg_inf
            for j in range(limit, width):
                out[j] = neg_inf

    @numba.njit(parallel=True, nogil=True, cache=False)
    def unpack_rows(bitmask: Any, rows: Any, vocab_size: int, out: Any) -> None:
        limit = min(vocab_size, out.shape[1])
        for i in numba.prange(rows.shape[0]):
            r = rows[i]
            words = bitmask[r]
            for j in range(limit):
                out[r, j] = (words[j >> 5] >> (j & 31)) & 1 != 0
            for j in range(limit, out.shape[1]):
                out[r, j] = False

    return mask_rows, unpack_rows


def _rows(n: int, indices: torch.Tensor | None) -> np.ndarray:
    if indices is None:
        return np.arange(n, dtype=np.int64)
    return indices.to(torch.int64).numpy()


def apply_mask_(
    logits2d: torch.Tensor, bitmask_rows: torch.Tensor, vocab_size: int, indices: torch.Tensor | None
) -> None:
    """In place on a 2-D CPU view ``[rows, width]`` whose last dimension is contiguous."""
    int_dtype, neg_inf = NEG_INF_BITS[logits2d.dtype]
    bits = logits2d.view(int_dtype).numpy()
    mask_rows, _ = _kernels()
    mask_rows(bits, bitmask_rows.numpy(), _rows(bits.shape[0], indices), vocab_size, bits.dtype.type(neg_inf))


def allowed_rows(
    bitmask_rows: torch.Tensor, rows: int, width: int, vocab_size: int, indices: torch.Tensor | None
) -> torch.Tensor:
    """Same result as :func:`constrain.kernels._torch.allowed_rows`, without the per-bit temporaries."""
    out = np.ones((rows, width), dtype=np.bool_) if indices is not None else np.empty((rows, width), np.bool_)
    _, unpack_rows = _kernels()
    unpack_rows(bitmask_rows.numpy(), _rows(rows, indices), vocab_size, out)
    return torch.from_numpy(out)
