"""The model's sampling distribution p(. | prefix), before any constraint.

Every sampler (LCD, AWRS, SMC) and the exact enumerator call :func:`sampling_log_probs`, so temperature,
top-k and top-p are applied identically everywhere and always **before** masking (algorithms.md §0):
the constrained target is then p(x)·1[x ∈ L] for this p, and log Z_t is the share of *this* p's mass
that the constraint keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Sampling:
    """How raw logits become p: ``temperature`` (0 = greedy), ``top_k`` and ``top_p`` (None = off)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def sampling_log_probs(logits: torch.Tensor, vocab_size: int, sampling: Sampling) -> torch.Tensor:
    """float32 log p ``[rows, max(width, vocab_size)]``: log-softmax of the processed logits.

    Greedy decoding reports p at temperature 1. Columns past the logits' width (a constraint wider
    than the model) get -inf; columns past ``vocab_size`` (a model wider than the constraint) keep
    their mass, so that it counts as disallowed rather than vanishing from the normaliser.
    """
    import torch

    z = logits.float()
    if z.shape[-1] < vocab_size:
        z = torch.nn.functional.pad(z, (0, vocab_size - z.shape[-1]), value=-math.inf)
    if sampling.temperature > 0 and sampling.temperature != 1:
        z = z / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < z.shape[-1]:
        kth = torch.topk(z, sampling.top_k, dim=-1).values[:, -1:]
        z = z.masked_fill(z < kth, -math.inf)
    if sampling.top_p is not None and sampling.top_p < 1:
        z = _top_p(z, sampling.top_p)
    return torch.log_softmax(z, dim=-1)


def _top_p(z: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches ``top_p`` (at least one token)."""
    import torch

    sorted_z, order = torch.sort(z, dim=-1, descending=True)
    probs = torch.softmax(sorted_z, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
    drop_sorted = mass_before >= top_p
    drop_sorted[:, 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return z.masked_fill(drop, -math.inf)
