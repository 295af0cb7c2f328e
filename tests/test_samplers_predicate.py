"""Constraints that are not automata: Python predicates on the text, and products with compiled ones."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from constrain.samplers import (
    PredicateConstraint,
    TableLM,
    awrs_sample,
    enumerate_exact,
    pooled_estimate,
    predicate,
    product,
    smc,
    tv_distance,
    tv_noise_quantile,
)

from constrain import Compiler
from constrain.vocab import Vocabulary

TOKENS = [b"a", b"b", b"c", b"ab", b"ca", b"", "é".encode()[:1], "é".encode()[1:], "é".encode()]
EOS = 5
WORDS = ["ab", "abc", "ca", "cab", "b", "aé"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


@pytest.fixture(scope="module")
def compiler() -> Compiler:
    return Compiler(vocab=Vocabulary.from_token_bytes(TOKENS, eos_token_ids=[EOS]))


def is_prefix_of_word(text: str) -> bool:
    return any(w.startswith(text) for w in WORDS)


def walks(compiled: object, rng: np.random.Generator, count: int, length: int) -> Iterator[list[int]]:
    for _ in range(count):
        m = compiled.matcher()  # type: ignore[attr-defined]
        path: list[int] = []
        for _ in range(length):
            options = [t for t in m.allowed_tokens() if t != EOS]
            if not options:
                break
            t = int(rng.choice(options))
            m.advance(t)
            path.append(t)
        yield path


def test_predicate_masks_equal_the_compiled_regex(compiler: Compiler) -> None:
    """'prefix of one of WORDS' as a predicate and as a regex: the same masks everywhere, except on
    tokens that end inside a multi-byte character (the predicate judges the character once complete)."""
    regex = compiler.regex("|".join(re.escape(w) for w in WORDS))
    pred = PredicateConstraint(is_prefix_of_word, compiler.vocab, complete=lambda s: s in WORDS)
    whole = [t for t, b in enumerate(TOKENS) if t == EOS or (b and _is_utf8(b))]
    for path in walks(regex, np.random.default_rng(0), 40, 4):
        a, b = regex.matcher(), pred.matcher()
        for t in [*path, None]:
            assert [a.allows(x) for x in whole] == [b.allows(x) for x in whole]
            assert a.accepting == b.accepting
            if t is not None:
                assert a.advance(t) and b.advance(t)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_partial_utf8_is_held_back(compiler: Compiler) -> None:
    seen: list[str] = []

    def record(text: str) -> bool:
        seen.append(text)
        return is_prefix_of_word(text)

    m = PredicateConstraint(record, compiler.vocab, complete=lambda s: s in WORDS).matcher()
    assert m.advance(0)  # "a"
    assert m.advance(6)  # first byte of "é": the predicate still sees "a"
    assert seen[-1] == "a" and not m.accepting  # an incomplete character is never complete text
    assert m.advance(7) and m.accepting and m.text == "aé"
    assert m.allows(EOS) and m.advance(EOS) and m.finished and not m.allows(0)


def test_partial_characters_can_be_rejected(compiler: Compiler) -> None:
    held = predicate(is_prefix_of_word, compiler).matcher()
    strict = predicate(is_prefix_of_word, compiler, partial_chars="reject").matcher()
    assert held.advance(0) and strict.advance(0)  # "a"
    assert held.allows(6) and not strict.allows(6)  # a first byte of "é"
    assert held.allows(8) and strict.allows(8)  # the whole "é" is fine either way


def test_fork_and_rollback(compiler: Compiler) -> None:
    m = predicate(is_prefix_of_word, compiler).matcher()
    assert m.advance(4)  # "ca"
    f = m.fork()
    assert f.advance(1) and f.text == "cab" and m.text == "ca"
    assert not m.advance(2)  # "cac" is no prefix: state unchanged
    f.rollback(1)
    assert f.text == "ca" and f.num_tokens == 1
    f.reset()
    assert f.text == "" and f.num_tokens == 0


def test_memoised_checks(compiler: Compiler) -> None:
    pred = predicate(is_prefix_of_word, compiler)
    m = pred.matcher()
    m.allowed_tokens()
    first = pred.checks
    assert first > 0
    pred.matcher().allowed_tokens()
    assert pred.checks == first  # same texts: answered from the cache


def test_product_allows_the_intersection(compiler: Compiler) -> None:
    regex = compiler.regex("[abc]{1,3}")

    def ok(text: str) -> bool:
        return "bb" not in text and "cc" not in text

    both = product(regex, ok)
    piece = [b.decode("utf-8", "ignore") for b in compiler.vocab.token_bytes]
    for path in walks(regex, np.random.default_rng(1), 40, 3):
        m, r, text = both.matcher(), regex.matcher(), ""
        for t in path:
            want = {int(x) for x in r.allowed_tokens() if ok(text if x == EOS else text + piece[x])}
            assert set(m.allowed_tokens().tolist()) == want
            assert all(m.allows(x) == (x in want) for x in range(len(TOKENS)))
            if t not in want:
                assert not m.advance(t)
                break
            assert m.advance(t) and r.advance(t)
            text += piece[t]
    assert both.checks > 0


def test_product_needs_matching_vocabularies(compiler: Compiler) -> None:
    other = Compiler(vocab=Vocabulary.from_token_bytes([b"a", b""], eos_token_ids=[1]))
    with pytest.raises(ValueError, match="vocabulary sizes"):
        product(compiler.regex("a"), other.regex("a"))


def test_awrs_and_smc_on_a_predicate_match_enumeration(compiler: Compiler) -> None:
    """No automaton anywhere: the constraint is Python code, checked token by token."""

    def no_repeat(text: str) -> bool:
        return len(text) <= 3 and set(text) <= set("abc") and all(x != y for x, y in itertools.pairwise(text))

    constraint = predicate(no_repeat, compiler, complete=lambda s: len(s) >= 2 and no_repeat(s))
    lm = TableLM(len(TOKENS), seed=7)
    dist = enumerate_exact(lm, [], constraint, max_new_tokens=6)
    assert tv_distance(dist.lcd(), dist.target()) > 0.3
    runs = [smc(lm, [], constraint, particles=20, proposal="awrs", seed=s, max_new_tokens=6) for s in range(1500)]
    pooled = pooled_estimate(runs, dist)
    bound = tv_noise_quantile(pooled.covariance)
    assert bound < 0.035 and tv_distance(pooled.estimate, dist.target()) < bound
    single = awrs_sample(lm, [], constraint, n=200, seed=0, max_new_tokens=6)
    ended = [p for p in single.particles if p.eos]
    assert all(no_repeat(p.text) and len(p.text) >= 2 for p in ended)
    # the only dead ends: a first byte of "é" (allowed until the character is complete)
    assert all(p.dead and p.token_ids[-1] == 6 for p in single.particles if not p.eos)


def test_product_with_a_regex_matches_enumeration(compiler: Compiler) -> None:
    constraint = product(compiler.regex("(a|b|c)+"), lambda s: s.count("a") <= 1 and len(s) <= 3)
    lm = TableLM(len(TOKENS), seed=6)
    dist = enumerate_exact(lm, [], constraint, max_new_tokens=5)
    assert tv_distance(dist.lcd(), dist.target()) > 0.3
    runs = [smc(lm, [], constraint, particles=10, proposal="awrs", seed=s, max_new_tokens=5) for s in range(2000)]
    pooled = pooled_estimate(runs, dist)
    bound = tv_noise_quantile(pooled.covariance)
    assert bound < 0.03 and tv_distance(pooled.estimate, dist.target()) < bound
