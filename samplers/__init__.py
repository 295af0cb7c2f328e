"""Samplers that correct the bias of masking: LCD, AWRS and SMC, plus predicate constraints.

Plain masking (locally constrained decoding, LCD) yields valid text but not the model conditioned on
validity: it over-weights prefixes that lead into narrow dead ends. The samplers here use only the
matcher interface (``allows``, ``advance``, ``fork``, ``fill_bitmask``...), so they work for any
constraint: regex, grammars, JSON Schema, Python predicates and their products.

* :func:`lcd` / :func:`lcd_step`: masking with per-step log Z (temperature, top-k/top-p before masking).
* :func:`awrs` (one step) and :func:`awrs_sample`: adaptive weighted rejection sampling, arXiv 2504.05410.
* :func:`smc`: sequential Monte Carlo with LCD or AWRS proposals, batched through the model.
* :func:`predicate`, :func:`product`: constraints that are not automata.
* :func:`enumerate_exact` and friends: the exact constrained distribution, to test samplers against.

torch is imported only inside the functions that need it.
"""

from .api import SAMPLERS, default_proposal, sample
from .awrs import VARIANTS, AWRSResult, CdfPool, awrs, awrs_greedy, geometric_awrs, paper_awrs, recursive_awrs
from .exact import (
    ExactDistribution,
    PooledEstimate,
    empirical,
    enumerate_exact,
    iid_covariance,
    pooled_estimate,
    tv_distance,
    tv_mean_bound,
    tv_noise_quantile,
)
from .lcd import lcd_step
from .lm import HFModel, LanguageModel, LMState, TableLM
from .logits import Sampling, sampling_log_probs
from .predicate import PredicateConstraint, PredicateMatcher, ProductConstraint, ProductMatcher, predicate, product
from .smc import (
    Particle,
    SMCResult,
    awrs_sample,
    effective_sample_size,
    lcd,
    multinomial_resample,
    smc,
    systematic_resample,
)

__all__ = [
    "SAMPLERS",
    "VARIANTS",
    "AWRSResult",
    "CdfPool",
    "ExactDistribution",
    "HFModel",
    "LMState",
    "LanguageModel",
    "Particle",
    "PooledEstimate",
    "PredicateConstraint",
    "PredicateMatcher",
    "ProductConstraint",
    "ProductMatcher",
    "SMCResult",
    "Sampling",
    "TableLM",
    "awrs",
    "awrs_greedy",
    "awrs_sample",
    "default_proposal",
    "effective_sample_size",
    "empirical",
    "enumerate_exact",
    "geometric_awrs",
    "iid_covariance",
    "lcd",
    "lcd_step",
    "multinomial_resample",
    "paper_awrs",
    "pooled_estimate",
    "predicate",
    "product",
    "recursive_awrs",
    "sample",
    "sampling_log_probs",
    "smc",
    "systematic_resample",
    "tv_distance",
    "tv_mean_bound",
    "tv_noise_quantile",
]
