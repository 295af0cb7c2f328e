"""Adaptive weighted rejection sampling (AWRS; Lipkin et al., arXiv 2504.05410, COLM 2025).

One step of constrained decoding without a mask: draw a token from the model's (unmasked) distribution
p, check only that token with the constraint, and on rejection remove it and redraw *without
replacement*. The first accepted token is an exact draw from the locally constrained distribution
π_t(a) = p(a)·c(a) / Z_t, after a number of checks that grows like exp(KL(π_t ‖ p)) = 1/Z_t rather than
with the vocabulary (algorithms.md §0, §1).

A second, cheap part estimates the allowed mass Z_t = Σ_a p(a)·c(a) without ever computing it. The
estimate Ẑ is *properly weighted*: E[Ẑ · f(token)] = Σ_a p(a)·c(a)·f(a) for every f, so Ẑ can be an
SMC incremental weight exactly like the exact Z_t of masking (algorithms.md §1.4). Three estimators:

* ``"paper"`` (default): the published estimator, Definition 2 of arXiv 2504.05410, see
  :func:`paper_awrs`;
* ``"recursive"`` and ``"geometric"``: the two estimators of the maintained genlm-control library
  (``recursive_awrs``, ``geometric_awrs``), re-derived in :func:`recursive_awrs` and
  :func:`geometric_awrs`.

Sampling without replacement is done by :class:`CdfPool` (inverse CDF over the not-yet-rejected
tokens). Each estimator is written against the tiny :class:`Pool` protocol, so a test can drive it with
an enumerating pool and check proper weighting exactly, not only by Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Variant = Literal["paper", "recursive", "geometric"]
VARIANTS: tuple[Variant, ...] = ("paper", "recursive", "geometric")
Check = Callable[[int], bool]


@dataclass(frozen=True)
class AWRSResult:
    """One AWRS step: the token (-1 if no token with positive probability is allowed), log Ẑ, checks."""

    token: int
    log_weight: float
    checks: int


class Pool(Protocol):
    """Tokens to draw from, proportionally to p, without the ones removed so far."""

    @property
    def total(self) -> float:
        """Σ p over all tokens (1 up to rounding)."""
        ...

    @property
    def mass_left(self) -> float:
        """Σ p over the tokens not removed."""
        ...

    def prob(self, token: int) -> float: ...

    def draw(self) -> int:
        """A token ∝ p among those not removed; -1 when no token with p > 0 is left."""
        ...

    def remove(self, token: int) -> None: ...


class CdfPool:
    """Sampling without replacement by inverse CDF: O(V) set-up, O(log V) per draw.

    A draw that lands on a removed token is redrawn (the removed tokens' mass is skipped, so the result
    is ∝ p over the rest). When the removed mass since the last rebuild exceeds half of what was left,
    the CDF is rebuilt without them, so a draw needs fewer than two tries on average and ``mass_left``
    is a sum of the remaining probabilities, not a difference that loses precision near zero.
    """

    def __init__(self, probs: npt.NDArray[np.float64], rng: np.random.Generator) -> None:
        self._p = probs
        self._rng = rng
        self._removed: set[int] = set()
        self._positive_left = int(np.count_nonzero(probs > 0))
        self._cum = np.cumsum(probs)
        self._total = float(self._cum[-1]) if len(probs) else 0.0
        self._base = self._total  # mass of the tokens that were not removed at the last rebuild
        self._stale = 0.0  # mass removed since the last rebuild

    @property
    def total(self) -> float:
        return self._total

    @property
    def mass_left(self) -> float:
        return max(self._base - self._stale, 0.0)

    def prob(self, token: int) -> float:
        return float(self._p[token])

    def draw(self) -> int:
        if self._positive_left == 0:
            return -1
        cum, last = self._cum, len(self._cum) - 1
        while True:
            u = self._rng.random() * self._base
            t = min(int(np.searchsorted(cum, u, side="right")), last)
            if t not in self._removed and self._p[t] > 0:
                return t

    def remove(self, token: int) -> None:
        if token in self._removed:
            return
        self._removed.add(token)
        self._stale += float(self._p[token])
        if self._p[token] > 0:
            self._positive_left -= 1
        if self._stale > 0.5 * self._base and self._positive_left:
            q = self._p.copy()
            q[list(self._removed)] = 0.0
            self._cum = np.cumsum(q)
            self._base = float(self._cum[-1])
            self._stale = 0.0


class _Checker:
    """Calls the constraint once per token: accepted tokens are remembered (rejected ones leave the pool)."""

    def __init__(self, allows: Check) -> None:
        self._allows = allows
        self._accepted: set[int] = set()
        self.calls = 0

    def __call__(self, token: int) -> bool:
        if token in self._accepted:
            return True
        self.calls += 1
        if self._allows(token):
            self._accepted.add(token)
            return True
        return False


def paper_awrs(pool: Pool, check: Check) -> tuple[int, float]:
    """AWRS with the estimator of arXiv 2504.05410, Definition 2 (the one its experiments use).

    Trace 0 draws without replacement until the first accepted token, which is returned; it rejected
    n₀ tokens of total probability ψ₀. Trace 1 (the "continuation" trace) keeps those tokens removed
    and draws again until an acceptance, rejecting n₁ more. The estimate is

        Ẑ = (1 − ψ₀) / (n₀ + n₁ + 1)                                   (Definition 2)

    and (token, Ẑ) is properly weighted for p·c (the paper's Proposition 3). Returns (token, Ẑ) with Ẑ
    relative to ``pool.total``; (-1, 0) if no token is allowed.
    """
    n_rejected = 0
    token = -1
    while token < 0:  # trace 0
        a = pool.draw()
        if a < 0:
            return -1, 0.0
        if check(a):
            token = a
        else:
            pool.remove(a)
            n_rejected += 1
    left_after_trace0 = pool.mass_left / pool.total  # 1 − ψ₀
    while True:  # trace 1: the accepted token stays in the pool, so this ends
        a = pool.draw()
        if a < 0 or check(a):
            break
        pool.remove(a)
        n_rejected += 1
    return token, left_after_trace0 / (n_rejected + 1)


def recursive_awrs(pool: Pool, check: Check) -> tuple[int, float]:
    """AWRS with genlm-control's recursive estimator (one without-replacement order a₁, a₂, ...).

    It rests on E f(X) = P(X=x)·f(x) + (1 − P(X=x))·E[f(X) | X≠x]: each rejected aᵢ multiplies the
    estimate by 1 − qᵢ, where qᵢ = p(aᵢ)/(mass not yet rejected) is the chance aᵢ was proposed. Those
    factors telescope to M = (mass not rejected) / (total mass). At the first accepted a, one more
    token b of the same order estimates the tail: Ẑ = M if b is accepted (or no b is left), else M·q_a
    = p(a)/total. Checking ``(token, Ẑ)`` is properly weighted is a two-line induction on the number of
    tokens; the tests verify it by exact enumeration.
    """
    while True:
        before = pool.mass_left
        a = pool.draw()
        if a < 0:
            return -1, 0.0
        if check(a):
            pool.remove(a)  # continue the same order one step past the accepted token
            b = pool.draw()
            if b < 0 or check(b):
                return a, before / pool.total
            return a, pool.prob(a) / pool.total
        pool.remove(a)


def geometric_awrs(pool: Pool, check: Check, rng: np.random.Generator, max_accepts: int = 2) -> tuple[int, float]:
    """AWRS with genlm-control's geometric estimator: a with-replacement run, simulated without replacement.

    Sampling *with* replacement until ``r = max_accepts`` acceptances gives F failures, a negative
    binomial count, and Haldane's (r−1)/(r+F−1) is an unbiased estimate of the acceptance probability
    Z. The run is simulated cheaply: draws that would hit an already-rejected token (probability ρ =
    rejected mass) are never checked; their number before each real draw is Geometric(1−ρ) − 1. The
    returned token is the first acceptance, whose identity is independent of F, so (token, Ẑ) is
    properly weighted.
    """
    if max_accepts < 2:
        raise ValueError("the geometric estimator needs max_accepts >= 2")
    accepts = failures = 0
    token = -1
    while accepts < max_accepts:
        rejected_share = 1.0 - pool.mass_left / pool.total
        if rejected_share > 0:
            failures += int(rng.geometric(max(1.0 - rejected_share, 1e-300))) - 1
        a = pool.draw()
        if a < 0:
            break
        if check(a):
            accepts += 1
            if token < 0:
                token = a
        else:
            failures += 1
            pool.remove(a)
    if token < 0:
        return -1, 0.0
    return token, (max_accepts - 1) / (max_accepts + failures - 1)


def awrs(
    logp: npt.NDArray[np.floating],
    allows: Check,
    rng: np.random.Generator,
    *,
    variant: Variant = "paper",
    max_accepts: int = 2,
) -> AWRSResult:
    """One AWRS step over the log-probabilities ``logp`` of the constraint's token ids.

    ``logp`` may have total mass below 1: the missing mass is on tokens the constraint never allows
    (logits wider than its vocabulary), and it is accounted for exactly (genlm's ``logZ0``). Returns the
    token, log Ẑ (E[Ẑ] = Z_t, the allowed mass; log Ẑ itself is not unbiased for log Z_t) and the
    number of constraint checks. If no token of positive probability is allowed: token -1, log weight
    -inf.
    """
    lp = np.asarray(logp, dtype=np.float64)
    top = float(lp.max()) if lp.size else -math.inf
    if top == -math.inf:
        return AWRSResult(-1, -math.inf, 0)
    probs = np.exp(lp - top)
    log_total = top + math.log(float(probs.sum()))  # log Z0: the mass inside the constraint's vocabulary
    pool = CdfPool(probs, rng)
    checker = _Checker(allows)
    if variant == "paper":
        token, z_hat = paper_awrs(pool, checker)
    elif variant == "recursive":
        token, z_hat = recursive_awrs(pool, checker)
    elif variant == "geometric":
        token, z_hat = geometric_awrs(pool, checker, rng, max_accepts)
    else:
        raise ValueError(f"unknown AWRS variant {variant!r}; choose one of {VARIANTS}")
    if token < 0 or z_hat <= 0:
        return AWRSResult(-1, -math.inf, checker.calls)
    return AWRSResult(token, log_total + math.log(z_hat), checker.calls)


def awrs_greedy(logp: npt.NDArray[np.floating], allows: Check) -> AWRSResult:
    """Greedy constrained decoding by rejection: the most likely allowed token, checking in order.

    No estimate of Z is made (log weight NaN); the checks stop at the first allowed token.
    """
    lp = np.asarray(logp, dtype=np.float64)
    checks = 0
    for t in _descending(lp):
        if lp[t] == -math.inf:
            break
        checks += 1
        if allows(t):
            return AWRSResult(t, math.nan, checks)
    return AWRSResult(-1, -math.inf, checks)


def _descending(values: npt.NDArray[np.float64], head: int = 64) -> Iterator[int]:
    """Indices by decreasing value: the top ``head`` by partial sort, the rest only if asked for."""
    n = values.size
    k = min(n, head)
    top = np.argpartition(-values, k - 1)[:k] if k < n else np.arange(n)
    top = top[np.argsort(-values[top], kind="stable")]
    yield from (int(t) for t in top)
    if k < n:
        rest = np.setdiff1d(np.arange(n), top)
        yield from (int(t) for t in rest[np.argsort(-values[rest], kind="stable")])
