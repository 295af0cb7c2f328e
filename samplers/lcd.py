"""Locally constrained decoding (LCD): token masking, one batched step.

Each row samples from p renormalised over the tokens its matcher allows, q_t(a) = p(a)·c(a) / Z_t, and
reports log Z_t, the log of the allowed mass (algorithms.md §0). The fused kernels of
``constrain.kernels`` do the masking, the sampling and log Z in one pass (Triton on a GPU, numba/torch
on the CPU); a plain-torch fallback keeps the samplers usable without them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch


def lcd_step(
    logp: torch.Tensor,
    bitmask: npt.NDArray[np.int32],
    vocab_size: int,
    uniforms: npt.NDArray[np.float64] | None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sample one allowed token per row of ``logp`` (log p, ``[rows, width]``) and return log Z per row.

    ``bitmask`` is the int32 ``[rows, words]`` mask the matchers filled (CPU); ``uniforms`` one float in
    [0, 1) per row, or None for greedy (the most likely allowed token). A row with nothing allowed
    gets token -1 and log Z = -inf.
    """
    import torch

    rows = logp.shape[0]
    mask = torch.from_numpy(np.ascontiguousarray(bitmask[:rows])).to(logp.device)
    temperature = 0.0 if uniforms is None else 1.0
    u = None if uniforms is None else torch.from_numpy(uniforms.astype(np.float32)).to(logp.device)
    try:
        from constrain.kernels import masked_sample
    except ImportError:  # the kernels package is optional for the samplers
        tokens, log_z = _masked_sample_torch(logp, mask, vocab_size, u)
    else:
        tokens, log_z = masked_sample(logp, mask, temperature, uniforms=u, vocab_size=vocab_size)
    return tokens.cpu().numpy().astype(np.int64), log_z.double().cpu().numpy()


def _masked_sample_torch(
    logp: torch.Tensor, mask: torch.Tensor, vocab_size: int, uniforms: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference path: unpack the bits, renormalise, inverse-CDF (or argmax) per row."""
    import torch

    width = logp.shape[-1]
    shifts = torch.arange(32, device=logp.device, dtype=torch.int32)
    bits = ((mask.unsqueeze(-1) >> shifts) & 1).flatten(-2).bool()
    allowed = torch.zeros(logp.shape, dtype=torch.bool, device=logp.device)
    keep = min(width, vocab_size, bits.shape[-1])
    allowed[:, :keep] = bits[:, :keep]
    masked = logp.float().masked_fill(~allowed, -math.inf)
    log_z = torch.logsumexp(masked, dim=-1) - torch.logsumexp(logp.float(), dim=-1)
    if uniforms is None:
        tokens = masked.argmax(dim=-1)
    else:
        probs = torch.softmax(masked, dim=-1).double()
        cum = probs.cumsum(dim=-1)
        tokens = (cum <= uniforms.double().unsqueeze(-1) * cum[:, -1:]).sum(dim=-1)
        tokens = torch.minimum(tokens, torch.tensor(width - 1))
    dead = ~torch.isfinite(log_z)
    return torch.where(dead, torch.full_like(tokens, -1), tokens), log_z
