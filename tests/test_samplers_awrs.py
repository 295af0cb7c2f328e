"""AWRS: exact draws from p·c/Z and properly weighted estimates of Z (arXiv 2504.05410).

Two kinds of evidence:
* exact: every execution of the paper's and the recursive estimator is enumerated (each draw without
  replacement branches over the tokens left, with its probability), so E[Ẑ·1[token = a]] is computed
  exactly and must equal p(a)·c(a) to rounding, for every a and every constraint on small vocabularies;
* Monte Carlo on random states of a toy LM under real compiled regexes: the mean of Ẑ must contain the
  exact allowed mass Z in its 4.5-sigma interval, the tokens must follow p·c/Z, and the number of
  constraint checks must respect the expected-cost bound derived for each estimator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from constrain.samplers import (
    CdfPool,
    Sampling,
    TableLM,
    awrs,
    awrs_greedy,
    paper_awrs,
    recursive_awrs,
    sampling_log_probs,
)

from constrain import Compiler
from constrain.vocab import Vocabulary


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: thread hand-offs would cost more than the work (and slow a shared 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class ScriptedPool:
    """A pool whose draws follow a script of choices; unscripted draws take the first option and record
    how many options there were, so the caller can enumerate every execution."""

    def __init__(self, probs: np.ndarray, script: list[int]) -> None:
        self.p = probs
        self.script = script
        self.removed: set[int] = set()
        self.choices: list[int] = []
        self.options: list[int] = []
        self.probability = 1.0

    @property
    def total(self) -> float:
        return float(self.p.sum())

    @property
    def mass_left(self) -> float:
        return float(sum(self.p[t] for t in range(len(self.p)) if t not in self.removed))

    def prob(self, token: int) -> float:
        return float(self.p[token])

    def draw(self) -> int:
        options = [t for t in range(len(self.p)) if t not in self.removed and self.p[t] > 0]
        if not options:
            return -1
        depth = len(self.choices)
        choice = self.script[depth] if depth < len(self.script) else 0
        self.choices.append(choice)
        self.options.append(len(options))
        token = options[choice]
        self.probability *= self.p[token] / sum(self.p[o] for o in options)
        return token

    def remove(self, token: int) -> None:
        self.removed.add(token)


def exact_expectations(
    estimator: Callable[[ScriptedPool, Callable[[int], bool]], tuple[int, float]],
    probs: np.ndarray,
    valid: set[int],
) -> tuple[float, np.ndarray]:
    """(total probability of all executions, E[Ẑ·1[token = a]] for every a), by enumeration."""
    stack: list[list[int]] = [[]]
    total = 0.0
    expect = np.zeros(len(probs))
    while stack:
        script = stack.pop()
        pool = ScriptedPool(probs, script)
        token, z_hat = estimator(pool, lambda t: t in valid)
        for depth in range(len(script), len(pool.choices)):
            stack.extend([*pool.choices[:depth], alt] for alt in range(1, pool.options[depth]))
        total += pool.probability
        if token >= 0:
            expect[token] += pool.probability * z_hat
    return total, expect


@pytest.mark.parametrize("estimator", [paper_awrs, recursive_awrs], ids=["paper", "recursive"])
def test_estimators_are_properly_weighted_exactly(estimator: Callable[..., tuple[int, float]]) -> None:
    rng = np.random.default_rng(7)
    for trial in range(4):
        probs = rng.dirichlet(np.full(5, 0.7))
        if trial % 2:
            probs = np.append(probs, 0.0)  # a token the model never proposes
        n = len(probs)
        for r in range(n + 1):
            for valid in itertools.combinations(range(n), r):
                total, expect = exact_expectations(estimator, probs, set(valid))
                assert total == pytest.approx(1.0, abs=1e-12)
                want = np.array([probs[a] if a in valid else 0.0 for a in range(n)]) / probs.sum()
                np.testing.assert_allclose(expect, want, rtol=0, atol=1e-12)


def test_paper_estimator_by_hand() -> None:
    """algorithms.md §1.5: V = {a, b}, p = (1/2, 1/2), only a valid: E[Ẑ] = 1/2 = Z."""
    total, expect = exact_expectations(paper_awrs, np.array([0.5, 0.5]), {0})
    assert total == pytest.approx(1.0) and expect[0] == pytest.approx(0.5, abs=1e-15) and expect[1] == 0


# ------------------------------------------------------------------------------------ Monte Carlo
TOKENS = [b"a", b"b", b"c", b"ab", b"ba", b"cc", b"abc", b"", b"d"]
EOS = 7


def random_states(count: int, seed: int) -> list[tuple[np.ndarray, object]]:
    """(log p over the vocabulary, matcher) at random reachable positions of random regexes."""
    vocab = Vocabulary.from_token_bytes(TOKENS, eos_token_ids=[EOS])
    compiler = Compiler(vocab=vocab)
    patterns = ["(ab|c)*d?", "a[bc]{2,5}", "(abc|ba)+c?", "[ab]*c[ab]*", "d|(c(a|b)){1,3}"]
    lm = TableLM(len(TOKENS), seed=seed, scale=2.0)
    rng = np.random.default_rng(seed)
    states = []
    while len(states) < count:
        m = compiler.regex(patterns[len(states) % len(patterns)]).matcher()
        context: list[int] = []
        for _ in range(int(rng.integers(0, 4))):
            text = [t for t in m.allowed_tokens() if t != EOS]
            if not text:
                break
            t = int(rng.choice(text))
            m.advance(t)
            context.append(t)
        logits = torch.from_numpy(lm.logits_for(context)).unsqueeze(0)
        logp = sampling_log_probs(logits, len(TOKENS), Sampling()).double().numpy()[0]
        states.append((logp, m))
    return states


@pytest.mark.parametrize("variant", ["paper", "recursive", "geometric"])
def test_weight_mean_is_the_allowed_mass(variant: str) -> None:
    draws = 3000
    for k, (logp, m) in enumerate(random_states(8, seed=11)):
        allowed = m.allowed_tokens()  # type: ignore[attr-defined]
        p = np.exp(logp)
        z = float(p[allowed].sum())
        rng = np.random.default_rng(1000 + k)
        results = [awrs(logp, m.allows, rng, variant=variant) for _ in range(draws)]  # type: ignore[arg-type, attr-defined]
        w = np.array([math.exp(r.log_weight) for r in results])
        se = w.std(ddof=1) / math.sqrt(draws)
        assert abs(w.mean() - z) <= 4.5 * se + 1e-12, (variant, k, w.mean(), z, se)
        # tokens follow p·c/Z: every allowed token's frequency within 4.5 sigma
        counts = np.bincount([r.token for r in results], minlength=len(p))
        assert counts[np.setdiff1d(np.arange(len(p)), allowed)].sum() == 0
        target = p[allowed] / z
        freq = counts[allowed] / draws
        assert np.all(np.abs(freq - target) <= 4.5 * np.sqrt(target * (1 - target) / draws) + 1e-9)
        # expected checks: paper and geometric ≤ 2/Z (two runs to an acceptance, each ≤ 1/Z without
        # replacement); recursive ≤ 1/Z + 1 (one run plus one look-ahead)
        checks = np.array([r.checks for r in results], dtype=float)
        bound = 1 / z + 1 if variant == "recursive" else 2 / z
        assert checks.mean() <= bound + 4.5 * checks.std(ddof=1) / math.sqrt(draws), (variant, k, checks.mean(), z)


def test_geometric_with_more_acceptances_is_unbiased() -> None:
    logp, m = random_states(1, seed=5)[0]
    z = float(np.exp(logp)[m.allowed_tokens()].sum())  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    w = np.array([math.exp(awrs(logp, m.allows, rng, variant="geometric", max_accepts=4).log_weight)  # type: ignore[attr-defined]
                  for _ in range(3000)])
    assert abs(w.mean() - z) <= 4.5 * w.std(ddof=1) / math.sqrt(len(w))


def test_mass_outside_the_constraint_vocabulary_is_counted() -> None:
    """log p over the constraint's ids may sum to less than 1 (wider logits): Ẑ stays unbiased for Z."""
    logp = np.log(np.array([0.1, 0.2, 0.3]))  # 0.4 of the mass is on ids the constraint never allows
    rng = np.random.default_rng(0)
    for variant in ("paper", "recursive", "geometric"):
        w = np.array([math.exp(awrs(logp, lambda t: t != 1, rng, variant=variant).log_weight)  # type: ignore[arg-type]
                      for _ in range(4000)])
        assert abs(w.mean() - 0.4) <= 4.5 * w.std(ddof=1) / math.sqrt(len(w)) + 1e-12


def test_nothing_allowed_kills_the_particle() -> None:
    logp = np.array([math.log(0.5), math.log(0.5), -math.inf])  # token 2 is allowed but has probability 0
    for variant in ("paper", "recursive", "geometric"):
        r = awrs(logp, lambda t: t == 2, np.random.default_rng(0), variant=variant)  # type: ignore[arg-type]
        assert r.token == -1 and r.log_weight == -math.inf and r.checks == 2


def test_greedy_checks_in_order_of_probability() -> None:
    logp = np.log(np.array([0.05, 0.4, 0.3, 0.25]))
    seen: list[int] = []

    def allows(t: int) -> bool:
        seen.append(t)
        return t in (0, 2)

    r = awrs_greedy(logp, allows)
    assert r.token == 2 and seen == [1, 2] and r.checks == 2 and math.isnan(r.log_weight)
    big = np.log(np.full(300, 1 / 600))
    big[299] = math.log(1e-6)  # the least likely token: found only past the partial sort's head
    r = awrs_greedy(big, lambda t: t == 299)
    assert r.token == 299 and r.checks == 300


def test_pool_draws_without_replacement_in_proportion() -> None:
    probs = np.array([0.5, 0.0, 0.3, 0.2])
    rng = np.random.default_rng(0)
    firsts = np.zeros(4)
    seconds_after_0 = np.zeros(4)
    for _ in range(20000):
        pool = CdfPool(probs, rng)
        a = pool.draw()
        firsts[a] += 1
        pool.remove(a)
        b = pool.draw()
        assert b != a and probs[b] > 0
        if a == 0:
            seconds_after_0[b] += 1
        pool.remove(b)
        pool.remove(pool.draw())
        assert pool.draw() == -1 and pool.mass_left == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(firsts / firsts.sum(), probs, atol=0.015)
    np.testing.assert_allclose(seconds_after_0 / seconds_after_0.sum(), [0, 0, 0.6, 0.4], atol=0.02)
