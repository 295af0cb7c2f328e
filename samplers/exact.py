"""Exact constrained distributions by enumeration, and how far a sampler's output is from them.

For a model small enough (a toy table LM) or a language small enough (a regex with a dozen strings),
every valid token sequence can be enumerated with its model probability p(x). That gives the target
π(x) = p(x)·1[x ∈ L] / P(L) and the distribution LCD actually samples, q(x) = Π_t p(x_t)/Z_t, so a
sampler can be judged by its total-variation distance to the right answer.

Noise floor. A sampler's estimate π̂ of a K-outcome distribution has sampling error e = π̂ − π even
with no bias. By the CLT e ≈ N(0, C): for n i.i.d. draws from π, C = (diag π − ππᵀ)/n; for SMC pooled
over R independent runs (:func:`pooled_estimate`), C is the delta-method covariance of the ratio
estimator, estimated from the runs. Jensen gives E[TV] = ½ Σ_x E|e_x| ≤ ½ Σ_x √C_xx, and
:func:`tv_noise_quantile` gives the q-quantile of ½ Σ|e| under N(0, C) by simulation: a TV above it is
evidence of bias, not of bad luck.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .lm import LanguageModel
from .logits import Sampling, sampling_log_probs

Key = tuple[int, ...]


@dataclass
class ExactDistribution:
    """Every valid token sequence (EOS excluded from the key) with log p(x) and log q_LCD(x)."""

    log_p: dict[Key, float]
    """log of p(x)·1[x ∈ L], EOS probability included (summed over EOS ids)."""
    log_q: dict[Key, float]
    """log of LCD's probability of x."""
    texts: dict[Key, str] = field(default_factory=dict)
    pruned_mass: float = 0.0
    """Upper bound on the model mass of sequences dropped by ``min_log_prob`` (0: nothing dropped)."""
    pruned_lcd_mass: float = 0.0
    """Upper bound on LCD's probability of the dropped sequences."""

    @property
    def log_mass(self) -> float:
        """log P(L): the probability that an unconstrained sample is valid."""
        return _logsumexp(np.array(list(self.log_p.values())))

    def target(self) -> dict[Key, float]:
        """π: the model conditioned on validity."""
        z = self.log_mass
        return {k: math.exp(v - z) for k, v in self.log_p.items()}

    def lcd(self) -> dict[Key, float]:
        """q: what token masking samples."""
        return {k: math.exp(v) for k, v in self.log_q.items()}


def enumerate_exact(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    constraint: Any,
    *,
    max_new_tokens: int,
    sampling: Sampling | None = None,
    min_log_prob: float = -math.inf,
    max_rows: int = 4096,
    decode: bool = True,
) -> ExactDistribution:
    """Walk the tree of allowed token sequences breadth first, one batched forward pass per depth.

    The budget matches :func:`~constrain.samplers.smc.smc` with ``truncation="force_eos"``: at most
    ``max_new_tokens`` tokens, EOS included. Prefixes whose log p *and* LCD log-probability are both below
    ``min_log_prob`` are dropped (LCD can put large mass on prefixes the model finds unlikely, so both
    matter); ``pruned_mass`` and ``pruned_lcd_mass`` bound what was lost. ``max_rows`` bounds the frontier.
    """
    sampling = sampling or Sampling()
    vocab_size = int(constraint.vocab_size)
    eos_ids = [int(e) for e in constraint.vocab.eos_token_ids]
    eos_set = frozenset(eos_ids)
    state = lm.start(list(prompt_ids), 1)
    frontier: list[tuple[Key, float, float, Any]] = [((), 0.0, 0.0, constraint.matcher())]
    log_p: dict[Key, float] = {}
    log_q: dict[Key, float] = {}
    pruned = pruned_q = 0.0
    for depth in range(max_new_tokens):
        if not frontier:
            break
        lp = sampling_log_probs(state.logits(), vocab_size, sampling)[:, :vocab_size].double().cpu().numpy()
        last = depth == max_new_tokens - 1
        children: list[tuple[int, int, Key, float, float, Any]] = []
        for row, (key, lpx, lqx, m) in enumerate(frontier):
            allowed = [int(t) for t in m.allowed_tokens() if lp[row, t] > -math.inf]
            if last:
                allowed = [t for t in allowed if t in eos_set]
            if not allowed:
                continue
            log_z = _logsumexp(lp[row, allowed])
            for t in allowed:
                step_p = lpx + lp[row, t]
                step_q = lqx + lp[row, t] - log_z
                if t in eos_set:
                    log_p[key] = float(np.logaddexp(log_p.get(key, -math.inf), step_p))
                    log_q[key] = float(np.logaddexp(log_q.get(key, -math.inf), step_q))
                elif step_p < min_log_prob and step_q < min_log_prob:  # negligible for π and for q
                    pruned += math.exp(step_p)
                    pruned_q += math.exp(step_q)
                else:
                    child = m.fork()
                    child.advance(t)
                    children.append((row, t, (*key, t), step_p, step_q, child))
        if len(children) > max_rows:
            raise RuntimeError(f"{len(children)} prefixes at depth {depth + 1}: raise min_log_prob or max_rows")
        state.select([c[0] for c in children])
        state.advance([c[1] for c in children])
        frontier = [c[2:] for c in children]
    texts = {k: constraint.vocab.decode(list(k)) for k in log_p} if decode else {}
    return ExactDistribution(log_p, log_q, texts, pruned, pruned_q)


# ------------------------------------------------------------------------------------------- distances
def tv_distance(estimate: Mapping[Hashable, float], exact: Mapping[Hashable, float]) -> float:
    """½ Σ |estimate − exact| over the union of supports."""
    keys = set(estimate) | set(exact)
    return 0.5 * sum(abs(estimate.get(k, 0.0) - exact.get(k, 0.0)) for k in keys)


def empirical(keys: Sequence[Hashable], weights: Sequence[float] | None = None) -> dict[Hashable, float]:
    """The (weighted) empirical distribution of ``keys``."""
    w = np.ones(len(keys)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    out: dict[Hashable, float] = {}
    for k, wk in zip(keys, w):
        if wk > 0:
            out[k] = out.get(k, 0.0) + float(wk) / total
    return out


def iid_covariance(probs: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
    """Covariance of the empirical frequencies of n i.i.d. draws: (diag p − ppᵀ)/n."""
    return (np.diag(probs) - np.outer(probs, probs)) / n


@dataclass
class PooledEstimate:
    """SMC runs pooled with their marginal-likelihood weights, and the covariance of that estimate."""

    estimate: dict[Key, float]
    covariance: npt.NDArray[np.float64]
    """Delta-method covariance over the exact support's order (``keys``), estimated from the runs."""
    keys: list[Key]
    log_ml_mean: float
    """log of the average of the runs' P(valid) estimates (unbiased for P(L) before the log)."""
    log_ml_se: float
    """Standard error of that average, relative to it."""


def pooled_estimate(runs: Sequence[Any], exact: ExactDistribution) -> PooledEstimate:
    """Pool independent SMC runs: particle i of run r weighs Ẑ_r·W̄_{r,i}, so the estimate is
    Σ_r A_r / Σ_r B_r with A_r(x) = Σ_i Ẑ_r W̄_{r,i} 1[x_{r,i} = x] and B_r = Ẑ_r, a ratio of unbiased
    estimators of p(x)1[x∈L] and P(L): consistent as R grows for any fixed particle count. Its error
    is ≈ (1/R) Σ_r D_r with D_r = (A_r − π B_r)/P(L), so Cov ≈ Cov(D)/R."""
    keys = list(exact.log_p)
    index = {k: j for j, k in enumerate(keys)}
    pi = np.array([v for v in exact.target().values()])
    z = math.exp(exact.log_mass)
    a = np.zeros((len(runs), len(keys) + 1))  # last column: outcomes outside the exact support
    b = np.zeros(len(runs))
    top = max(r.log_ml for r in runs)
    for r, run in enumerate(runs):
        scale = math.exp(run.log_ml - top) if run.log_ml > -math.inf else 0.0
        b[r] = scale
        for p, w in zip(run.particles, run.weights()):
            if w > 0:
                a[r, index.get(tuple(p.token_ids), len(keys)) if p.eos else len(keys)] += scale * w
    est = a.sum(axis=0) / b.sum()
    estimate = {k: float(est[j]) for j, k in enumerate(keys) if est[j] > 0}
    if est[-1] > 0:
        estimate[("outside",)] = float(est[-1])  # type: ignore[index]
    z_scaled = z / math.exp(top)
    d = (a[:, :-1] - np.outer(b, pi)) / z_scaled
    cov = np.cov(d, rowvar=False, ddof=1) / len(runs) if len(runs) > 1 else np.zeros((len(keys), len(keys)))
    ml = b * math.exp(top)
    mean = float(ml.mean())
    se = float(ml.std(ddof=1) / math.sqrt(len(ml))) if len(ml) > 1 else math.inf
    return PooledEstimate(estimate, np.atleast_2d(cov), keys, math.log(mean) if mean > 0 else -math.inf,
                          se / mean if mean > 0 else math.inf)


def tv_noise_quantile(
    covariance: npt.NDArray[np.float64], q: float = 0.999, draws: int = 4000, seed: int = 0
) -> float:
    """The q-quantile of ½ Σ|e| for e ~ N(0, covariance): the TV that sampling noise alone reaches."""
    cov = 0.5 * (covariance + covariance.T)
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    e = np.random.default_rng(seed).standard_normal((draws, len(vals))) @ root.T
    return float(np.quantile(0.5 * np.abs(e).sum(axis=1), q))


def tv_mean_bound(covariance: npt.NDArray[np.float64]) -> float:
    """Jensen's bound on the expected TV from noise alone: ½ Σ_x √C_xx."""
    return float(0.5 * np.sqrt(np.clip(np.diag(covariance), 0.0, None)).sum())


def _logsumexp(x: npt.NDArray[np.float64]) -> float:
    if x.size == 0:
        return -math.inf
    top = float(np.max(x))
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(x - top).sum()))
