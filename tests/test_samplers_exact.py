"""LCD, AWRS and SMC against exact constrained distributions (toy LM, small regular languages).

The exact answer comes from enumerating every valid token sequence with its model probability p(x):
π(x) = p(x)·1[x ∈ L] / P(L) is what the user asked for; q(x) = Π_t p(x_t)/Z_t is what masking samples.

How "close enough" is decided (derivation in ``constrain.samplers.exact``): a sampler's estimate has
sampling error e ≈ N(0, C); for n i.i.d. draws C = (diag π − ππᵀ)/n, for SMC pooled over R independent
runs C is the delta-method covariance of the ratio estimator Σ_r A_r / Σ_r B_r, estimated from the runs
(with the exact π and P(L)). The bound is the 99.9% quantile of ½Σ|e| under N(0, C) (simulated, fixed
seed), so a TV above it means bias. Each test also requires the bound to be small (≤ 0.03 at n = 10⁴
draws), so a sampler cannot pass by being noisy, and the trap language makes LCD's bias (TV ≈ 0.5)
more than ten times larger than the bound. Seeds are fixed: the tests are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from constrain.samplers import (
    ExactDistribution,
    HFModel,
    Sampling,
    SMCResult,
    TableLM,
    awrs_sample,
    effective_sample_size,
    empirical,
    enumerate_exact,
    iid_covariance,
    lcd,
    multinomial_resample,
    pooled_estimate,
    sample,
    smc,
    systematic_resample,
    tv_distance,
    tv_noise_quantile,
)

from constrain import Compiler
from constrain.vocab import Vocabulary

TOKENS = [b"a", b"b", b"c", b"ab", b""]
EOS = 4
TRAP = "aaaa|b[abc]{0,2}"  # 'a' opens a single narrow path the model rarely follows: LCD over-weights it
TRUNCATED = "(a|ab)(c|b)*"  # infinite: the target is its strings of at most 4 tokens (+ EOS)
DRAWS = 10_000
PARTICLES = 10
RUNS = {"lcd": 1500, "awrs": 2500}  # independent SMC runs pooled (AWRS weights are noisier: more runs)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Thousands of tiny steps: thread hand-offs (torch, numba) would cost more than the work."""
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


def toy_lm() -> TableLM:
    return TableLM(len(TOKENS), seed=1)


def budget(pattern: str) -> int:
    return 5 if pattern == TRUNCATED else 8


def iid_bound(probs: dict, n: int) -> float:
    p = np.array(list(probs.values()))
    return tv_noise_quantile(iid_covariance(p, n))


def keys(run: SMCResult) -> list[tuple[int, ...]]:
    return [tuple(p.token_ids) for p in run.particles]


@pytest.fixture(scope="module")
def exact(compiler: Compiler) -> dict[str, ExactDistribution]:
    return {p: enumerate_exact(toy_lm(), [], compiler.regex(p), max_new_tokens=budget(p)) for p in (TRAP, TRUNCATED)}


def test_enumeration_is_a_distribution(exact: dict[str, ExactDistribution]) -> None:
    for dist in exact.values():
        assert sum(dist.lcd().values()) == pytest.approx(1.0, abs=1e-6)
        assert sum(dist.target().values()) == pytest.approx(1.0, abs=1e-9)
        assert 0 < math.exp(dist.log_mass) < 1
    trap = exact[TRAP]
    assert tv_distance(trap.lcd(), trap.target()) > 0.4  # the trap works: masking is far from π
    assert trap.texts[(0, 0, 0, 0)] == "aaaa"


def test_lcd_samples_its_own_law_not_the_posterior(compiler: Compiler, exact: dict[str, ExactDistribution]) -> None:
    dist = exact[TRAP]
    run = lcd(toy_lm(), [], compiler.regex(TRAP), n=DRAWS, seed=0, max_new_tokens=budget(TRAP))
    emp = empirical(keys(run))
    bound = iid_bound(dist.lcd(), DRAWS)
    assert bound < 0.03
    assert tv_distance(emp, dist.lcd()) < bound
    assert tv_distance(emp, dist.target()) > 0.4
    # per-step log Z is reported with every token, and its sum is log q(x) - log p(x) for that x
    for p in run.particles[:50]:
        key = tuple(p.token_ids)
        assert p.eos and len(p.log_z) == len(key) + 1
        assert sum(p.log_z) == pytest.approx(dist.log_p[key] - dist.log_q[key], abs=1e-4)


@pytest.mark.parametrize("pattern", [TRAP, TRUNCATED])
def test_awrs_samples_exactly_what_masking_samples(
    compiler: Compiler, exact: dict[str, ExactDistribution], pattern: str
) -> None:
    dist = exact[pattern]
    run = awrs_sample(toy_lm(), [], compiler.regex(pattern), n=DRAWS, seed=1, max_new_tokens=budget(pattern))
    bound = iid_bound(dist.lcd(), DRAWS)
    assert bound < 0.03
    assert tv_distance(empirical(keys(run)), dist.lcd()) < bound
    assert run.checks > 0 and run.mask_fills == 0


SMC_CASES = [  # (language, proposal, resampling, ESS threshold): 0.5 is our default, 0.9 Loula et al.'s
    (TRAP, "lcd", "systematic", 0.5),
    (TRAP, "awrs", "systematic", 0.5),
    (TRUNCATED, "lcd", "multinomial", 0.9),
    (TRUNCATED, "awrs", "multinomial", 0.9),
]


@pytest.mark.parametrize(("pattern", "proposal", "resampling", "ess"), SMC_CASES)
def test_smc_matches_the_posterior(
    compiler: Compiler, exact: dict[str, ExactDistribution], pattern: str, proposal: str, resampling: str,
    ess: float,
) -> None:
    dist = exact[pattern]
    constraint = compiler.regex(pattern)
    lm = toy_lm()
    runs = [
        smc(lm, [], constraint, particles=PARTICLES, proposal=proposal, resampling=resampling,  # type: ignore[arg-type]
            ess_threshold=ess, seed=seed, max_new_tokens=budget(pattern))
        for seed in range(RUNS[proposal])
    ]
    assert sum(bool(r.resampled_at) for r in runs) > len(runs) // 10
    pooled = pooled_estimate(runs, dist)
    bound = tv_noise_quantile(pooled.covariance)
    tv = tv_distance(pooled.estimate, dist.target())
    assert bound < 0.03, bound
    assert tv < bound, (tv, bound)
    if pattern == TRAP:
        assert tv_distance(dist.lcd(), dist.target()) > 10 * bound
    # the marginal-likelihood estimate is unbiased for P(valid): its mean over runs within 4.5 s.e.
    ratio = math.exp(pooled.log_ml_mean - dist.log_mass)
    assert abs(ratio - 1) < 4.5 * pooled.log_ml_se, (ratio, pooled.log_ml_se)


def test_importance_sampling_without_resampling(compiler: Compiler, exact: dict[str, ExactDistribution]) -> None:
    dist = exact[TRAP]
    runs = [smc(toy_lm(), [], compiler.regex(TRAP), particles=PARTICLES, ess_threshold=0.0, seed=s)
            for s in range(RUNS["lcd"])]
    assert not any(r.resampled_at for r in runs)
    pooled = pooled_estimate(runs, dist)
    assert tv_distance(pooled.estimate, dist.target()) < tv_noise_quantile(pooled.covariance) < 0.03


@pytest.mark.parametrize("sampling", [Sampling(0.7), Sampling(1.0, top_k=3), Sampling(1.3, top_p=0.8)],
                         ids=["temperature", "top_k", "top_p"])
def test_sampling_settings_apply_before_the_mask(compiler: Compiler, sampling: Sampling) -> None:
    """Temperature, top-k and top-p shape p before masking, the same way in samplers and enumeration."""
    constraint = compiler.regex(TRUNCATED)
    dist = enumerate_exact(toy_lm(), [], constraint, max_new_tokens=5, sampling=sampling)
    for run in (lcd(toy_lm(), [], constraint, n=DRAWS, sampling=sampling, seed=2, max_new_tokens=5),
                awrs_sample(toy_lm(), [], constraint, n=DRAWS, sampling=sampling, seed=3, max_new_tokens=5)):
        alive = [tuple(p.token_ids) for p in run.particles if not p.dead]
        # with top-k/top-p a prefix can leave no allowed token: LCD's law is then conditioned on survival
        q = dist.lcd()
        mass = sum(q.values())
        q = {k: v / mass for k, v in q.items()}
        assert tv_distance(empirical(alive), q) < iid_bound(q, len(alive))
        dead = len(run.particles) - len(alive)
        assert abs(dead - DRAWS * (1 - mass)) <= 4.5 * math.sqrt(DRAWS * mass * (1 - mass)) + 1


def test_greedy_lcd_and_greedy_awrs_agree(compiler: Compiler) -> None:
    constraint = compiler.regex(TRUNCATED)
    greedy = Sampling(0.0)
    a = lcd(toy_lm(), [], constraint, sampling=greedy, max_new_tokens=5)
    b = awrs_sample(toy_lm(), [], constraint, sampling=greedy, max_new_tokens=5)
    assert a.particles[0].token_ids == b.particles[0].token_ids
    # the greedy path is the allowed argmax at every step
    lm, m, context = toy_lm(), constraint.matcher(), []
    for tok in a.particles[0].token_ids:
        logits = lm.logits_for(context)
        allowed = m.allowed_tokens()
        assert tok == int(allowed[np.argmax(logits[allowed])])
        m.advance(tok)
        context.append(tok)
    with pytest.raises(ValueError, match="greedy"):
        smc(toy_lm(), [], constraint, particles=2, sampling=greedy)


def test_tiny_transformer_with_kv_cache_matches_enumeration(compiler: Compiler) -> None:
    """The same exactness through a real transformers model (random weights): batched KV cache, rows
    duplicated on resampling and dropped when particles finish, one forward pass per step."""
    lm = HFModel(tiny_llama())
    constraint = compiler.regex("(a|b)(ab|c){0,2}")
    dist = enumerate_exact(lm, [1], constraint, max_new_tokens=6)
    runs = [smc(lm, [1], constraint, particles=8, seed=s, max_new_tokens=6) for s in range(500)]
    assert sum(bool(r.resampled_at) for r in runs) > 100
    pooled = pooled_estimate(runs, dist)
    bound = tv_noise_quantile(pooled.covariance)
    assert bound < 0.08 and tv_distance(pooled.estimate, dist.target()) < bound
    assert tv_distance(dist.lcd(), dist.target()) > 5 * bound
    steps = sum(r.steps for r in runs)
    assert lm.forward_passes <= steps + len(runs) + 6  # one per step, plus the prompt (and the enumeration)


def test_kv_cache_rows_follow_select_and_advance() -> None:
    model = tiny_llama()
    state = HFModel(model).start([1, 2], rows=3)
    state.advance([0, 3, 2])
    state.select([2, 0, 0, 1])  # reorder and duplicate
    state.advance([1, 1, 2, 0])
    state.select([3, 1])
    expect = [[1, 2, 3, 0], [1, 2, 0, 1]]
    with torch.inference_mode():
        fresh = model(torch.tensor(expect)).logits[:, -1, :]
    torch.testing.assert_close(state.logits(), fresh, atol=1e-4, rtol=1e-4)


def tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(TOKENS), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, initializer_range=0.05, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def test_resampling_schemes() -> None:
    rng = np.random.default_rng(0)
    w = np.array([0.5, 0.25, 0.0, 0.125, 0.125])
    for _ in range(100):
        counts = np.bincount(systematic_resample(w, rng), minlength=5)
        assert np.all(counts >= np.floor(5 * w)) and np.all(counts <= np.ceil(5 * w))
    total = sum(np.bincount(multinomial_resample(w, rng), minlength=5) for _ in range(4000))
    np.testing.assert_allclose(total / total.sum(), w, atol=0.01)
    assert effective_sample_size(np.zeros(4)) == pytest.approx(4)
    assert effective_sample_size(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1)


def test_sampler_dispatch(compiler: Compiler) -> None:
    constraint = compiler.regex(TRAP)
    one = sample(toy_lm(), [], constraint, sampler="lcd", seed=0, max_new_tokens=8)
    assert len(one.particles) == 1 and one.particles[0].eos
    many = sample(toy_lm(), [], constraint, sampler="smc", particles=4, seed=0, max_new_tokens=8)
    assert len(many.particles) == 4 and math.isfinite(many.log_ml)
    awrs_smc = sample(toy_lm(), [], constraint, sampler="awrs", particles=4, seed=0, max_new_tokens=8)
    assert awrs_smc.checks > 0 and awrs_smc.mask_fills == 0
    with pytest.raises(ValueError):
        sample(toy_lm(), [], constraint, sampler="lcd", particles=3)
    with pytest.raises(ValueError):
        sample(toy_lm(), [], constraint, sampler="beam")


def test_short_budget_kills_particles_that_cannot_end(compiler: Compiler) -> None:
    run = smc(toy_lm(), [], compiler.regex("aaaa"), particles=4, seed=0, max_new_tokens=3)
    assert run.log_ml == -math.inf and all(p.dead and not p.eos for p in run.particles)


def test_pruning_keeps_what_masking_samples(compiler: Compiler) -> None:
    """LCD puts half its mass on 'aaaa', which the model finds unlikely: pruning by p alone would drop it."""
    lm = toy_lm()
    full = enumerate_exact(lm, [], compiler.regex(TRAP), max_new_tokens=8)
    log_p_aaa = sum(float(torch.log_softmax(torch.from_numpy(lm.logits_for([0] * k)), -1)[0]) for k in range(3))
    pruned = enumerate_exact(lm, [], compiler.regex(TRAP), max_new_tokens=8, min_log_prob=log_p_aaa + 0.01)
    assert (0, 0, 0, 0) in pruned.log_q  # its prefix 'aaa' is below the threshold in p, not in q
    assert full.lcd()[(0, 0, 0, 0)] > 0.3
    assert tv_distance(pruned.lcd(), full.lcd()) <= pruned.pruned_lcd_mass + 1e-9
    assert tv_distance(pruned.target(), full.target()) <= 2 * pruned.pruned_mass / math.exp(full.log_mass) + 1e-9
