"""Plain-torch implementations: the CPU path for the fused ops and the reference every kernel is tested
against. They run on any device (the benchmark times them on the GPU as the "plain torch" baseline).

Every function takes the flattened views that :mod:`constrain.kernels.api` prepares: logits ``[rows, width]``
(float32/bfloat16/float16), bitmask rows ``[bitmask_rows, words]`` (int32) and, optionally, ``indices``
(int tensor of constrained rows). Rows not listed in ``indices`` are unconstrained: every one of their
``width`` logits is allowed.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

NEG_INF = float("-inf")
_INV_2_24 = 1.0 / 16777216.0


def unpack_bits(bitmask_rows: torch.Tensor, width: int, vocab_size: int) -> torch.Tensor:
    """Bool ``[n, width]``: token ``i`` allowed iff its bit is set and ``i < vocab_size``."""
    if sys.byteorder != "little":  # pragma: no cover - every supported host and GPU is little-endian
        raise RuntimeError("the bit-unpacking view assumes little-endian int32 words")
    n = bitmask_rows.shape[0]
    keep = min(width, vocab_size)
    words = (keep + 31) // 32
    as_bytes = bitmask_rows[:, :words].contiguous().view(torch.uint8)
    shifts = torch.arange(8, dtype=torch.uint8, device=as_bytes.device)
    bits = ((as_bytes.unsqueeze(-1) >> shifts) & 1).view(n, words * 32)[:, :keep].bool()
    if keep == width:
        return bits
    allowed = torch.zeros(n, width, dtype=torch.bool, device=bits.device)
    allowed[:, :keep] = bits
    return allowed


def allowed_rows(
    bitmask_rows: torch.Tensor, rows: int, width: int, vocab_size: int, indices: torch.Tensor | None
) -> torch.Tensor:
    """Bool ``[rows, width]`` of allowed tokens; rows outside ``indices`` allow everything."""
    if indices is None:
        return unpack_bits(bitmask_rows, width, vocab_size)
    idx = indices.long()
    allowed = torch.ones(rows, width, dtype=torch.bool, device=bitmask_rows.device)
    allowed[idx] = unpack_bits(bitmask_rows[idx], width, vocab_size)
    return allowed


def apply_mask_(
    logits: torch.Tensor,
    bitmask_rows: torch.Tensor,
    vocab_size: int,
    indices: torch.Tensor | None,
) -> None:
    """In place: disallowed logits become -inf. ``logits`` may be any ``[..., width]`` strided view."""
    width = logits.shape[-1]
    rows = logits.numel() // width if width else 0
    allowed = allowed_rows(bitmask_rows, rows, width, vocab_size, indices)
    logits.masked_fill_(~allowed.view(logits.shape), NEG_INF)


def scaled_logits(flat: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """float32 ``logits / T`` computed as ``logits * (1/T)``; ``T <= 0`` (greedy) scales by 1.

    Multiplying by the reciprocal (rounded to float32 once) is what the Triton kernels do, so both paths
    see the same scaled values.
    """
    z = flat.float()
    if isinstance(temperature, torch.Tensor):
        t = temperature.to(device=z.device, dtype=torch.float32).reshape(-1, 1)
        inv = torch.where(t > 0, 1.0 / t, torch.ones_like(t))
        return z * inv
    return z * (1.0 / temperature if temperature > 0 else 1.0)


def log_masses(z: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logsumexp over allowed, log Z = allowed share of the mass); both -inf for a row with no mass."""
    lse_allowed = torch.logsumexp(z.masked_fill(~allowed, NEG_INF), dim=-1)
    lse_all = torch.logsumexp(z, dim=-1)
    dead = lse_allowed == NEG_INF
    log_z = torch.where(dead, torch.full_like(lse_allowed, NEG_INF), lse_allowed - lse_all)
    return lse_allowed, log_z


def masked_log_softmax(
    flat: torch.Tensor, allowed: torch.Tensor, temperature: float | torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """log-probs renormalised over allowed tokens; -inf elsewhere and on rows with no allowed mass."""
    z = scaled_logits(flat, temperature)
    lse_allowed, _ = log_masses(z, allowed)
    keep = allowed & (lse_allowed > NEG_INF).unsqueeze(-1)
    return torch.where(keep, z - lse_allowed.unsqueeze(-1), NEG_INF).to(dtype)


def allowed_log_mass(
    flat: torch.Tensor, allowed: torch.Tensor, temperature: float | torch.Tensor
) -> torch.Tensor:
    return log_masses(scaled_logits(flat, temperature), allowed)[1]


def masked_sample(
    flat: torch.Tensor,
    allowed: torch.Tensor,
    temperature: float | torch.Tensor,
    uniforms: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-CDF sampling over the allowed tokens in id order (greedy where ``T <= 0``).

    Token = the first allowed id whose cumulative probability exceeds ``u``. The CDF is accumulated in
    float64, so this is the precise answer the float32 kernels approximate; they can differ only when
    ``u`` falls within rounding error of a CDF step. Rows with no allowed mass give token -1.
    """
    z = scaled_logits(flat, temperature)  # greedy rows are scaled by 1, so log Z is at temperature 1
    _, log_z = log_masses(z, allowed)
    za = z.masked_fill(~allowed, NEG_INF)
    best = za.amax(dim=-1, keepdim=True)
    dead = best.squeeze(-1) == NEG_INF
    p = torch.exp(za - torch.where(dead.unsqueeze(-1), torch.zeros_like(best), best)).double()
    cum = p.cumsum(dim=-1)
    target = uniforms.to(device=z.device, dtype=torch.float64).reshape(-1, 1) * cum[:, -1:]
    first_above = (cum <= target).sum(dim=-1)
    ids = torch.arange(z.shape[-1], device=z.device)
    last_positive = torch.where(p > 0, ids, -1).amax(dim=-1)
    sampled = torch.minimum(first_above, last_positive)
    greedy = za.argmax(dim=-1)
    if isinstance(temperature, torch.Tensor):
        is_greedy = temperature.to(z.device).reshape(-1) <= 0
        tokens = torch.where(is_greedy, greedy, sampled)
    else:
        tokens = greedy if temperature <= 0 else sampled
    tokens = torch.where(dead, torch.full_like(tokens, -1), tokens)
    return tokens, log_z


# --- Philox4x32-10, bit-identical to triton.language.randint, for seeded draws on the CPU -----------------

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)


def philox4x32(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 of ``counter`` ``[n, 4]`` under ``key`` ``[n, 2]`` (uint32 values): uint32 ``[n, 4]``."""
    c0, c1, c2, c3 = (counter[:, i].astype(np.uint64) for i in range(4))
    k0, k1 = key[:, 0].astype(np.uint64), key[:, 1].astype(np.uint64)
    for _ in range(10):
        p0, p1 = _M0 * c0, _M1 * c2  # exact: both factors < 2**32
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & _LO, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & _LO
        k0, k1 = (k0 + _W0) & _LO, (k1 + _W1) & _LO
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def seeded_uniforms(seed: torch.Tensor, rows: int) -> torch.Tensor:
    """The per-row uniforms the Triton sampler draws from ``seed`` (see ``api.masked_sample``).

    A single seed uses Philox counter ``row``; one seed per row uses counter 0, so a row's draw depends on
    its own seed alone. ``u = (first 32-bit output >> 8) * 2**-24``, exact in float32.
    """
    seeds = seed.detach().to("cpu", torch.int64).reshape(-1).numpy().view(np.uint64)
    if seeds.size == 1:
        seeds = np.repeat(seeds, rows)
        counters = np.arange(rows, dtype=np.uint64)
    else:
        counters = np.zeros(rows, dtype=np.uint64)
    counter = np.stack([counters & _LO, counters >> np.uint64(32), 0 * counters, 0 * counters], axis=1)
    key = np.stack([seeds & _LO, seeds >> np.uint64(32)], axis=1)
    first = philox4x32(counter, key)[:, 0]
    return torch.from_numpy((first >> np.uint32(8)).astype(np.float32) * np.float32(_INV_2_24))
