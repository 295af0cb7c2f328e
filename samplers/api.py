"""One entry point for ``constrain.generate(..., sampler=..., particles=...)`` and the CLI.

* ``"lcd"``: token masking, one sequence (the historical default).
* ``"awrs"``: one sequence by adaptive rejection: the same distribution as LCD with a few constraint
  checks per token instead of a mask; with ``particles > 1`` it is AWRS-SMC (the paper's method).
* ``"smc"``: SMC with ``particles`` (default 8); the proposal is LCD when the constraint has precomputed
  masks (compiled regex/grammar/schema) and AWRS otherwise (predicates, products with predicates).

Single-sequence runs stop at ``max_new_tokens`` without forcing EOS and end as soon as only EOS may
follow (as masking generation always did). SMC runs target π exactly: EOS is forced at the budget and
every particle pays for its final EOS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .awrs import Variant
from .lm import LanguageModel
from .logits import Sampling
from .smc import Proposal, Resampling, SMCResult, smc

SamplerName = Literal["lcd", "awrs", "smc"]
SAMPLERS: tuple[str, ...] = ("lcd", "awrs", "smc")
DEFAULT_SMC_PARTICLES = 8


def default_proposal(constraint: Any) -> Proposal:
    """LCD where masks are precomputed (an automaton behind the constraint), AWRS where they are not."""
    return "lcd" if hasattr(constraint, "automaton") else "awrs"


def sample(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    constraint: Any,
    *,
    sampler: str = "lcd",
    particles: int | None = None,
    sampling: Sampling | None = None,
    max_new_tokens: int = 256,
    seed: int | np.random.Generator | None = None,
    proposal: Proposal | None = None,
    ess_threshold: float = 0.5,
    resampling: Resampling = "systematic",
    awrs_variant: Variant = "paper",
    progress: Callable[[list[int]], Any] | None = None,
) -> SMCResult:
    """Run ``sampler`` and return its particles (one for the single-sequence samplers)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    if particles is not None and particles < 1:
        raise ValueError("particles must be >= 1")
    if sampler == "lcd" and (particles or 1) > 1:
        raise ValueError("the lcd sampler draws one sequence: use sampler='smc' (or 'awrs') with particles")
    single = sampler != "smc" and (particles or 1) == 1
    if single:
        return smc(
            lm, prompt_ids, constraint, particles=1, proposal="lcd" if sampler == "lcd" else "awrs",
            ess_threshold=0.0, sampling=sampling, max_new_tokens=max_new_tokens, seed=seed,
            awrs_variant=awrs_variant, truncation="stop", stop_when_finished=True, progress=progress,
        )
    n = particles or DEFAULT_SMC_PARTICLES
    chosen: Proposal = "awrs" if sampler == "awrs" else (proposal or default_proposal(constraint))
    return smc(
        lm, prompt_ids, constraint, particles=n, proposal=chosen, ess_threshold=ess_threshold,
        resampling=resampling, sampling=sampling, max_new_tokens=max_new_tokens, seed=seed,
        awrs_variant=awrs_variant, truncation="force_eos", progress=progress,
    )
