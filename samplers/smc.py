"""Sequential Monte Carlo over constrained token sequences (Loula et al., arXiv 2504.13139; Lew et al.,
arXiv 2306.03081), with LCD or AWRS as the proposal.

Target: π(x) ∝ p(x)·1[x ∈ L], over sequences that end with EOS within ``max_new_tokens`` tokens (EOS
included). Each particle is a matcher fork plus a row of the model's batched state. At every step all
live particles go through the model in **one** forward pass; each draws a token from its proposal and
multiplies its weight by the proposal's incremental weight:

* LCD proposal q_t = p·c / Z_t: increment Z_t, exact (from the mask);
* AWRS proposal (exact draw from q_t): increment Ẑ_t, an unbiased estimate of Z_t (see ``awrs``).

Either way the product of increments is a properly weighted importance weight for π (algorithms.md §0,
§1.4, §2.2). When the effective sample size 1/Σ W̄² falls below ``ess_threshold``·N, the particles are
resampled (systematic or multinomial) and their weights reset to the average. At the last allowed step
a particle can only end: EOS is forced with weight p(EOS) if the text is complete (genlm-control's
behaviour), else the particle dies. ``log_ml`` is the log of the standard unbiased SMC estimate of
P(valid) = Σ_x p(x)·1[x ∈ L].

With ``ess_threshold=0`` nothing is resampled: the particles are independent LCD (or AWRS) samples
with their importance weights, which is how the plain LCD and AWRS samplers are run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .awrs import Variant, awrs, awrs_greedy
from .lcd import lcd_step
from .lm import LanguageModel
from .logits import Sampling, sampling_log_probs

Proposal = Literal["lcd", "awrs"]
Resampling = Literal["systematic", "multinomial"]
Truncation = Literal["force_eos", "stop"]


@dataclass
class Particle:
    """One weighted sequence. ``token_ids`` excludes the final EOS; ``log_z`` holds the per-step
    incremental log weights along its lineage (log Z_t for LCD, log Ẑ_t for AWRS)."""

    token_ids: list[int]
    log_weight: float
    log_z: list[float]
    eos: bool
    """Ended with EOS. False: died, or stopped at the budget with ``truncation="stop"``."""
    text: str = ""
    dead: bool = False
    """No allowed token had positive probability (weight zero)."""


@dataclass
class SMCResult:
    """Weighted particles, the estimate of log P(valid), and what the run cost.

    ``particles[i].log_weight`` are the final log weights *within* the run; the normalised weights are
    :meth:`weights`. Across independent runs, particle i of run r carries the unnormalised weight
    exp(log_ml_r) · W̄_{r,i} (see :meth:`unnormalized_log_weights`).
    """

    particles: list[Particle]
    log_ml: float
    ess: list[float] = field(default_factory=list)
    resampled_at: list[int] = field(default_factory=list)
    steps: int = 0
    checks: int = 0
    """Constraint checks made by AWRS (``allows`` calls); LCD checks nothing one by one."""
    mask_fills: int = 0
    """Bitmask rows filled by LCD (each is a full mask over the vocabulary)."""
    tokens_sampled: int = 0
    """Token draws over all particles and steps (EOS included)."""
    seconds: float = 0.0

    def weights(self) -> npt.NDArray[np.float64]:
        """Normalised particle weights W̄ (all zero if every particle died)."""
        lw = np.array([p.log_weight for p in self.particles], dtype=np.float64)
        return normalize_log_weights(lw)

    def unnormalized_log_weights(self) -> npt.NDArray[np.float64]:
        """log(Ẑ · W̄_i): weights comparable across independent runs (pool runs with these)."""
        w = self.weights()
        with np.errstate(divide="ignore"):
            return self.log_ml + np.log(w)

    @property
    def ess_final(self) -> float:
        w = self.weights()
        s = float((w**2).sum())
        return 1.0 / s if s > 0 else 0.0

    def posterior(self) -> dict[str, float]:
        """Normalised weight per distinct text, among particles that ended with EOS."""
        out: dict[str, float] = {}
        for p, w in zip(self.particles, self.weights()):
            if p.eos and w > 0:
                out[p.text] = out.get(p.text, 0.0) + float(w)
        return out

    def sample(self, rng: np.random.Generator | int | None = None) -> Particle:
        """The resampled output: one particle drawn ∝ its weight (uniformly if every weight is zero)."""
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        w = self.weights()
        if w.sum() <= 0:
            return self.particles[int(gen.integers(len(self.particles)))]
        return self.particles[int(gen.choice(len(w), p=w))]


def normalize_log_weights(log_w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    top = np.max(log_w) if log_w.size else -math.inf
    if top == -math.inf:
        return np.zeros_like(log_w)
    w = np.exp(log_w - top)
    return w / w.sum()


def log_mean_exp(log_w: npt.NDArray[np.float64]) -> float:
    top = float(np.max(log_w)) if log_w.size else -math.inf
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(log_w - top).mean()))


def effective_sample_size(log_w: npt.NDArray[np.float64]) -> float:
    """1 / Σ W̄² (0 when every weight is zero)."""
    w = normalize_log_weights(log_w)
    s = float((w**2).sum())
    return 1.0 / s if s > 0 else 0.0


def systematic_resample(weights: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Ancestor indices: one uniform, N evenly spaced points on the weights' CDF (lower variance)."""
    n = len(weights)
    cum = np.cumsum(weights)
    cum /= cum[-1]
    points = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(cum, points, side="right"), n - 1).astype(np.int64)


def multinomial_resample(weights: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Ancestor indices: N independent draws ∝ weights."""
    n = len(weights)
    return np.sort(rng.choice(n, size=n, p=weights / weights.sum())).astype(np.int64)


RESAMPLERS: dict[str, Callable[[npt.NDArray[np.float64], np.random.Generator], npt.NDArray[np.int64]]] = {
    "systematic": systematic_resample,
    "multinomial": multinomial_resample,
}


def smc(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    constraint: Any,
    *,
    particles: int = 8,
    proposal: Proposal = "lcd",
    ess_threshold: float = 0.5,
    resampling: Resampling = "systematic",
    sampling: Sampling | None = None,
    max_new_tokens: int = 256,
    seed: int | np.random.Generator | None = None,
    awrs_variant: Variant = "paper",
    truncation: Truncation = "force_eos",
    stop_when_finished: bool = False,
    progress: Callable[[list[int]], Any] | None = None,
) -> SMCResult:
    """Run N particles with the ``proposal`` ("lcd" or "awrs") under ``constraint``; see the module doc.

    ``constraint``: anything with ``.matcher()``, ``.vocab_size`` and ``.vocab`` (a compiled regex,
    grammar or schema, a :class:`~constrain.samplers.predicate.PredicateConstraint`, or a product).
    ``truncation="stop"`` ends particles at the budget without forcing EOS (plain generation: their
    weights then do not target π). ``stop_when_finished`` ends a particle as soon as its matcher allows
    only EOS, saving that forward pass; its weight then lacks the factor p(EOS | text), so use it only
    when the weights are not needed. ``progress`` is called once per step with the tokens drawn (one per
live particle, -1 where a particle died).
    """
    sampling = sampling or Sampling()
    if particles < 1:
        raise ValueError("particles must be >= 1")
    if proposal not in ("lcd", "awrs"):
        raise ValueError(f"unknown proposal {proposal!r}: use 'lcd' or 'awrs'")
    if resampling not in RESAMPLERS:
        raise ValueError(f"unknown resampling {resampling!r}: use one of {sorted(RESAMPLERS)}")
    if not 0 <= ess_threshold <= 1:
        raise ValueError("ess_threshold must be in [0, 1]")
    if sampling.greedy and particles > 1:
        raise ValueError("greedy decoding (temperature 0) makes every particle the same: use particles=1")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    started = time.perf_counter()
    vocab = constraint.vocab
    vocab_size = int(constraint.vocab_size)
    eos_ids = [int(e) for e in vocab.eos_token_ids]
    eos_set = frozenset(eos_ids)
    n = particles
    root = constraint.matcher()
    matchers = [root.fork() for _ in range(n)]
    tokens: list[list[int]] = [[] for _ in range(n)]
    log_z: list[list[float]] = [[] for _ in range(n)]
    log_w = np.zeros(n, dtype=np.float64)
    done = np.zeros(n, dtype=bool)
    eos = np.zeros(n, dtype=bool)
    dead = np.zeros(n, dtype=bool)
    state = lm.start(list(prompt_ids), n)
    live = list(range(n))  # live[r]: the particle in row r of the model state
    bitmask = np.zeros((n, (vocab_size + 31) // 32), dtype=np.int32)
    log_ml_acc = 0.0
    result = SMCResult(particles=[], log_ml=-math.inf)

    for step in range(max_new_tokens):
        if not live:
            break
        result.steps = step + 1
        final = step == max_new_tokens - 1
        logp = sampling_log_probs(state.logits(), vocab_size, sampling)
        if final and truncation == "force_eos":
            lp = logp[:, :vocab_size].double().cpu().numpy()
            drawn = [_forced_eos(lp[r], matchers[i], eos_ids, rng) for r, i in enumerate(live)]
        elif proposal == "lcd":
            for r, i in enumerate(live):
                matchers[i].fill_bitmask(bitmask, r)
            uniforms = None if sampling.greedy else rng.random(len(live))
            toks, lzs = lcd_step(logp, bitmask, vocab_size, uniforms)
            drawn = list(zip(toks.tolist(), lzs.tolist()))
            result.mask_fills += len(live)
        else:
            lp = logp[:, :vocab_size].double().cpu().numpy()
            drawn = []
            for r, i in enumerate(live):
                m = matchers[i]
                res = awrs_greedy(lp[r], m.allows) if sampling.greedy else awrs(
                    lp[r], m.allows, rng, variant=awrs_variant
                )
                result.checks += res.checks
                drawn.append((res.token, res.log_weight))
        sampled_token: dict[int, int] = {}
        for (tok, inc), i in zip(drawn, live):
            if tok < 0 or inc == -math.inf:  # nothing allowed: the particle dies
                log_w[i], done[i], dead[i] = -math.inf, True, True
                continue
            if not matchers[i].advance(tok):  # a sound mask or check never lets this happen
                raise RuntimeError(f"sampled token {tok} was not accepted by the matcher")
            result.tokens_sampled += 1
            log_z[i].append(inc)
            if not math.isnan(inc):  # greedy AWRS makes no estimate
                log_w[i] += inc
            if tok in eos_set:
                done[i] = eos[i] = True
                continue
            tokens[i].append(tok)
            sampled_token[i] = tok
            if stop_when_finished and matchers[i].finished:
                done[i] = eos[i] = True
            elif final:
                done[i] = True  # truncation="stop": out of budget, no EOS
        if progress is not None:
            progress([tok for tok, _ in drawn])

        ancestors = np.arange(n)
        if ess_threshold > 0 and not done.all():
            ess = effective_sample_size(log_w)
            result.ess.append(ess)
            if ess == 0:
                break  # every particle died
            if ess < ess_threshold * n:
                ancestors = RESAMPLERS[resampling](normalize_log_weights(log_w), rng)
                log_ml_acc += log_mean_exp(log_w)
                matchers = [matchers[a].fork() for a in ancestors]
                tokens = [list(tokens[a]) for a in ancestors]
                log_z = [list(log_z[a]) for a in ancestors]
                done, eos, dead = done[ancestors], eos[ancestors], dead[ancestors]
                log_w = np.zeros(n, dtype=np.float64)
                result.resampled_at.append(step)
        row_of = {i: r for r, i in enumerate(live)}
        live = [j for j in range(n) if not done[j]]
        state.select([row_of[int(ancestors[j])] for j in live])
        state.advance([sampled_token[int(ancestors[j])] for j in live])

    result.log_ml = log_ml_acc + log_mean_exp(log_w)
    result.particles = [
        Particle(tokens[i], float(log_w[i]), log_z[i], bool(eos[i]), vocab.decode(tokens[i]), bool(dead[i]))
        for i in range(n)
    ]
    result.seconds = time.perf_counter() - started
    return result


def _forced_eos(
    logp: npt.NDArray[np.float64], matcher: Any, eos_ids: list[int], rng: np.random.Generator
) -> tuple[int, float]:
    """The last step: EOS (∝ p among allowed EOS ids) with weight log Σ p(EOS), or death."""
    allowed = [e for e in eos_ids if matcher.allows(e) and logp[e] > -math.inf]
    if not allowed:
        return -1, -math.inf
    lp = logp[allowed]
    top = float(lp.max())
    w = np.exp(lp - top)
    tok = allowed[int(rng.choice(len(allowed), p=w / w.sum()))] if len(allowed) > 1 else allowed[0]
    return tok, top + math.log(float(w.sum()))


def lcd(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    constraint: Any,
    *,
    n: int = 1,
    sampling: Sampling | None = None,
    max_new_tokens: int = 256,
    seed: int | np.random.Generator | None = None,
    truncation: Truncation = "force_eos",
) -> SMCResult:
    """``n`` independent LCD (masking) samples, batched; each particle's ``log_z`` is its per-step log Z_t."""
    return smc(
        lm, prompt_ids, constraint, particles=n, proposal="lcd", ess_threshold=0.0, sampling=sampling,
        max_new_tokens=max_new_tokens, seed=seed, truncation=truncation,
    )


def awrs_sample(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    constraint: Any,
    *,
    n: int = 1,
    sampling: Sampling | None = None,
    max_new_tokens: int = 256,
    seed: int | np.random.Generator | None = None,
    variant: Variant = "paper",
    truncation: Truncation = "force_eos",
) -> SMCResult:
    """``n`` independent AWRS samples (same law as LCD, fewer checks); ``log_z`` holds the estimates Ẑ_t."""
    return smc(
        lm, prompt_ids, constraint, particles=n, proposal="awrs", ess_threshold=0.0, sampling=sampling,
        max_new_tokens=max_new_tokens, seed=seed, awrs_variant=variant, truncation=truncation,
    )
