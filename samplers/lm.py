"""Language models as the samplers see them: next-token logits for a batch of rows that share a prompt.

A particle filter moves N sequences forward in lockstep, drops the finished ones and duplicates others
when it resamples. :class:`LMState` is exactly that contract: ``logits()`` for the current rows,
``select(rows)`` to keep/reorder/duplicate rows (KV caches included), ``advance(tokens)`` to append one
token per row with **one** batched forward pass. :class:`HFModel` wraps a transformers causal LM;
:class:`TableLM` is a toy model with random but fixed next-token tables, used where the exact
constrained distribution must be computed by enumeration (tests, benchmarks).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch


class LMState(Protocol):
    """Next-token logits for ``rows`` token sequences that all started from the same prompt."""

    @property
    def rows(self) -> int: ...

    def logits(self) -> torch.Tensor:
        """float ``[rows, width]``: the logits of the next token of every row."""
        ...

    def select(self, rows: Sequence[int]) -> None:
        """Keep rows ``rows`` in this order (indices may repeat: resampling duplicates particles)."""
        ...

    def advance(self, tokens: Sequence[int]) -> None:
        """Append ``tokens[i]`` to row ``i`` (one batched forward pass for all rows)."""
        ...


class LanguageModel(Protocol):
    def start(self, prompt_ids: Sequence[int], rows: int) -> LMState:
        """``rows`` copies of the state after reading ``prompt_ids``."""
        ...


# ---------------------------------------------------------------------------------------------- transformers
class HFModel:
    """A transformers causal LM with a KV cache; counts its forward passes (``forward_passes``)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.forward_passes = 0
        # transformers 5 names the KV cache argument ``cache`` (``past_key_values`` is deprecated and warns);
        # earlier versions only know ``past_key_values``
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def start(self, prompt_ids: Sequence[int], rows: int) -> HFState:
        import torch

        if not prompt_ids:
            raise ValueError("a transformers model needs at least one prompt token")
        with torch.inference_mode():
            out = self.model(torch.tensor([list(prompt_ids)], device=self.device), use_cache=True)
        self.forward_passes += 1
        cache = _cache_of(out)
        if rows != 1:
            cache.batch_repeat_interleave(rows)
        logits = out.logits[:, -1, :].float().expand(rows, -1).contiguous()
        return HFState(self, cache, logits)


def _cache_of(out: Any) -> Any:
    """The KV cache of a forward pass's output (``cache`` in transformers 5, ``past_key_values`` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class HFState:
    """Rows of one prompt's continuation: a batched KV cache plus the current next-token logits."""

    def __init__(self, owner: HFModel, cache: Any, logits: torch.Tensor) -> None:
        self._owner = owner
        self._cache = cache
        self._logits = logits

    @property
    def rows(self) -> int:
        return int(self._logits.shape[0])

    def logits(self) -> torch.Tensor:
        return self._logits

    def select(self, rows: Sequence[int]) -> None:
        import torch

        rows = list(rows)
        if rows == list(range(self.rows)):
            return
        idx = torch.tensor(rows, dtype=torch.long, device=self._logits.device)
        self._cache.reorder_cache(idx)
        self._logits = self._logits.index_select(0, idx)

    def advance(self, tokens: Sequence[int]) -> None:
        import torch

        if len(tokens) != self.rows:
            raise ValueError(f"{len(tokens)} tokens for {self.rows} rows")
        if not tokens:
            return
        ids = torch.tensor([[int(t)] for t in tokens], device=self._logits.device)
        with torch.inference_mode():
            out = self._owner.model(ids, use_cache=True, **{self._owner.cache_arg: self._cache})
        self._owner.forward_passes += 1
        self._cache = _cache_of(out)
        self._logits = out.logits[:, -1, :].float()


# ---------------------------------------------------------------------------------------------- toy model
class TableLM:
    """A toy LM: the logits after a context are a fixed random vector chosen by (seed, context).

    ``order`` is how many trailing tokens (prompt included) the table is keyed by; ``None`` keys it by
    the whole context, so every prefix has its own next-token distribution. ``scale`` is the standard
    deviation of the logits: larger values make the model more confident. Contexts are cached.
    """

    def __init__(self, vocab_size: int, seed: int = 0, *, order: int | None = None, scale: float = 1.5) -> None:
        self.vocab_size = vocab_size
        self.seed = seed
        self.order = order
        self.scale = scale
        self.forward_passes = 0
        self._table: dict[tuple[int, ...], npt.NDArray[np.float32]] = {}

    def logits_for(self, context: Sequence[int]) -> npt.NDArray[np.float32]:
        key = tuple(int(t) for t in context)
        if self.order is not None:
            key = key[len(key) - self.order :] if self.order else ()
        row = self._table.get(key)
        if row is None:
            rng = np.random.default_rng([self.seed, len(key), *key])
            row = (rng.standard_normal(self.vocab_size) * self.scale).astype(np.float32)
            self._table[key] = row
        return row

    def start(self, prompt_ids: Sequence[int], rows: int) -> TableState:
        return TableState(self, [tuple(int(t) for t in prompt_ids)] * rows)


class TableState:
    def __init__(self, lm: TableLM, contexts: list[tuple[int, ...]]) -> None:
        self._lm = lm
        self._contexts = contexts

    @property
    def rows(self) -> int:
        return len(self._contexts)

    def logits(self) -> torch.Tensor:
        import torch

        if not self._contexts:
            return torch.empty((0, self._lm.vocab_size), dtype=torch.float32)
        return torch.from_numpy(np.stack([self._lm.logits_for(c) for c in self._contexts]))

    def select(self, rows: Sequence[int]) -> None:
        self._contexts = [self._contexts[r] for r in rows]

    def advance(self, tokens: Sequence[int]) -> None:
        if len(tokens) != len(self._contexts):
            raise ValueError(f"{len(tokens)} tokens for {len(self._contexts)} rows")
        self._contexts = [(*c, int(t)) for c, t in zip(self._contexts, tokens)]
        if tokens:
            self._lm.forward_passes += 1
