"""GPU kernels for constrained decoding: apply a token bitmask; fused masked log-softmax, sampling, log Z.

Bitmask layout (see :mod:`constrain.bitmask`): int32 ``[rows, ceil(vocab/32)]``, bit ``i % 32`` of word
``i // 32`` set = token ``i`` allowed. Logits ``[batch, vocab]`` use one bitmask row per batch entry;
logits ``[batch, positions, vocab]`` (speculative verification, diffusion decoding) use one per
(batch, position): a bitmask ``[batch, positions, words]`` or its flattening ``[batch * positions, words]``
(row ``b * positions + p``). ``indices`` always name flattened rows.

The same API runs everywhere: Triton on CUDA tensors (no host synchronisation, CUDA-graph capturable),
numba and torch on the CPU. Triton and numba are imported on first use.
"""

from .api import Backend, allowed_log_mass, apply_token_bitmask_, masked_log_softmax, masked_sample

__all__ = ["Backend", "allowed_log_mass", "apply_token_bitmask_", "masked_log_softmax", "masked_sample"]
