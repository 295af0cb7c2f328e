"""constrain.kernels on the CPU: the Triton kernels run under TRITON_INTERPRET=1 against the torch and numba
paths and an independent float64 reference built from ``constrain.bitmask.bitmask_to_ids``.

Exactness: the in-place mask is bit-identical on every backend. Log-probabilities and log Z are float32
sums in different orders, so they match to 2e-5. Sampled tokens are compared exactly where ``u`` sits in
the middle of a CDF step (both float32 kernels and the float64 reference must agree there), and against
the float64 CDF with a rounding allowance for arbitrary ``u``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():  # must precede the first import of triton; the CI job sets it as well
    os.environ.setdefault("TRITON_INTERPRET", "1")

from constrain.kernels import (
    Backend,
    allowed_log_mass,
    apply_token_bitmask_,
    masked_log_softmax,
    masked_sample,
)
from constrain.kernels._torch import philox4x32, seeded_uniforms

from constrain.bitmask import bitmask_to_ids, bitmask_words, ids_to_bitmask

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
ROW_KINDS = ["random", "all", "none", "single", "sparse", "dense", "allowed_all_neg_inf"]


def _interpreter_ready() -> bool:
    """True when @triton.jit functions, triton's own included, were made by the interpreter."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return False
    try:
        import triton.language as tl
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:
        return False
    return isinstance(tl.sum, InterpretedFunction)


# The Triton kernels join every comparison when they run interpreted on CPU tensors; on a GPU machine
# (no TRITON_INTERPRET) tests/test_kernels_cuda.py runs the same cases compiled.
TRITON: tuple[Backend, ...] = ("triton",) if _interpreter_ready() else ()
FUSED_BACKENDS: tuple[Backend, ...] = ("torch", *TRITON)


def test_triton_kernels_are_covered_here() -> None:
    """Fail loudly, rather than skip silently, when a CPU-only run cannot interpret the kernels."""
    if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("compiled kernels are tested by tests/test_kernels_cuda.py")
    pytest.importorskip("triton")
    assert TRITON, "triton was imported before TRITON_INTERPRET=1 was set: set it in the environment"


# --- cases ----------------------------------------------------------------------------------------------


@dataclass
class Case:
    logits: torch.Tensor  # [batch, vocab] or [batch, positions, vocab]
    bitmask: torch.Tensor  # int32, one row per flattened logits row
    vocab_size: int | None
    indices: list[int] | None

    @property
    def rows(self) -> int:
        return self.logits.numel() // self.logits.shape[-1]

    def allowed(self) -> np.ndarray:
        """Independent reference: bool [rows, width] from bitmask_to_ids (unlisted rows allow everything)."""
        width = self.logits.shape[-1]
        limit = min(width, self.vocab_size if self.vocab_size is not None else 32 * self.bitmask.shape[-1])
        rows = self.bitmask.reshape(-1, self.bitmask.shape[-1]).numpy()
        out = np.ones((self.rows, width), dtype=bool)
        for r in range(self.rows) if self.indices is None else self.indices:
            out[r] = False
            out[r, bitmask_to_ids(rows[r], limit)] = True
        return out


def _row_bits(rng: np.random.Generator, kind: str, vocab: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A bitmask row of ``kind`` and, for allowed_all_neg_inf, the ids whose logits must be -inf."""
    if kind == "all":
        return np.full(bitmask_words(vocab), -1, np.int32), None
    if kind == "none":
        return np.zeros(bitmask_words(vocab), np.int32), None
    if kind == "single":
        return ids_to_bitmask([int(rng.integers(vocab))], vocab), None
    if kind == "sparse":  # a few runs of ids, the usual shape of a grammar mask
        ids = np.concatenate(
            [np.arange(s, min(vocab, s + rng.integers(1, 70))) for s in rng.integers(0, vocab, 4)]
        )
        return ids_to_bitmask(np.unique(ids), vocab), None
    if kind == "dense":
        keep = np.setdiff1d(np.arange(vocab), rng.integers(0, vocab, 20))
        return ids_to_bitmask(keep, vocab), None
    if kind == "allowed_all_neg_inf":
        ids = rng.choice(vocab, size=5, replace=False)
        return ids_to_bitmask(ids, vocab), ids
    return rng.integers(-(2**31), 2**31, bitmask_words(vocab), dtype=np.int64).astype(np.int32), None


def make_case(
    seed: int,
    dtype: torch.dtype,
    shape: tuple[int, ...],
    vocab: int,
    *,
    kinds: list[str] | None = None,
    vocab_size: int | None = None,
    indices: list[int] | None = None,
    flat_bitmask: bool = True,
) -> Case:
    """Logits of ``shape`` (last dim: width, maybe more than ``vocab``) and a bitmask for ``vocab`` tokens."""
    rng = np.random.default_rng(seed)
    rows = int(np.prod(shape[:-1]))
    logits = torch.from_numpy(rng.normal(0, 3, (rows, shape[-1])).astype(np.float32))
    bits = []
    for r in range(rows):
        kind = kinds[r % len(kinds)] if kinds else str(rng.choice(ROW_KINDS))
        row, dead_ids = _row_bits(rng, kind, vocab)
        bits.append(row)
        if dead_ids is not None:
            logits[r, torch.from_numpy(dead_ids[dead_ids < shape[-1]])] = float("-inf")
    bitmask = torch.from_numpy(np.stack(bits))
    if len(shape) == 3 and not flat_bitmask:
        bitmask = bitmask.view(shape[0], shape[1], -1)
    return Case(logits.to(dtype).view(shape), bitmask, vocab_size, indices)


def cases(dtype: torch.dtype) -> list[Case]:
    """Random shapes covering every layout the API promises."""
    return [
        make_case(1, dtype, (7, 3000), 3000),  # every row kind at least once
        make_case(2, dtype, (3, 2500), 2471),  # vocab not a multiple of 32, logits wider than the bitmask
        make_case(8, dtype, (3, 2471), 2471, vocab_size=2460),  # set bits at and past vocab_size mid-word
        make_case(3, dtype, (4, 4100), 4096, vocab_size=4000),  # vocab_size below the bitmask's reach
        make_case(4, dtype, (2, 3, 1500), 1500, flat_bitmask=False),  # [batch, positions, words]
        make_case(5, dtype, (2, 3, 1301), 1290, flat_bitmask=True),  # [batch * positions, words]
        make_case(6, dtype, (6, 2048), 2048, indices=[4, 1, 5]),
        make_case(7, dtype, (1, 37), 37, kinds=["random"]),
    ]


# --- in-place mask --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_all_backends_bit_identical(dtype: torch.dtype) -> None:
    for case in cases(dtype):
        outs = {}
        for backend in ("torch", "numba", *TRITON):
            logits = case.logits.clone()
            apply_token_bitmask_(logits, case.bitmask, case.indices, case.vocab_size, backend=backend)
            outs[backend] = logits
        expected = case.logits.clone().view(case.rows, -1)
        expected[torch.from_numpy(~case.allowed())] = float("-inf")
        for backend, out in outs.items():
            assert torch.equal(out.view(case.rows, -1), expected), (backend, case.logits.shape)


@pytest.mark.skipif(not TRITON, reason="needs the Triton interpreter")
@pytest.mark.parametrize("store_only", [False, True])
def test_mask_kernel_write_strategies(store_only: bool) -> None:
    """Both ways the kernel writes -inf (read-modify-write of mixed words, or predicated stores alone)."""
    from constrain.kernels import _triton, api

    for dtype in DTYPES:
        for case in cases(dtype):
            logits = case.logits.clone()
            v = api._prepare(logits, case.bitmask, case.indices, case.vocab_size)
            _triton.apply_mask_(
                logits, v.bitmask, v.rows, v.positions, v.vocab_size, v.indices, store_only=store_only
            )
            expected = case.logits.clone().view(case.rows, -1)
            expected[torch.from_numpy(~case.allowed())] = float("-inf")
            assert torch.equal(logits.view(case.rows, -1), expected), (dtype, case.logits.shape)


def test_mask_indices_tensor_and_strided_positions() -> None:
    case = make_case(11, torch.float32, (3, 4, 1000), 1000)
    base = torch.randn(3, 5, 1000)  # positions 0..3 of a [3, 5, V] buffer: rows cannot be flattened
    view = base[:, :4]
    view.copy_(case.logits)
    idx = torch.tensor([0, 7, 11], dtype=torch.int64)
    expected = case.logits.clone()
    apply_token_bitmask_(expected, case.bitmask, idx, backend="torch")
    for backend in ("numba", *TRITON):
        out = base.clone()
        apply_token_bitmask_(out[:, :4], case.bitmask, idx, backend=backend)
        assert torch.equal(out[:, :4], expected), backend
        assert torch.equal(out[:, 4], base[:, 4])  # the row outside the view is untouched
    untouched = [r for r in range(12) if r not in (0, 7, 11)]
    assert torch.equal(expected.view(12, -1)[untouched], case.logits.view(12, -1)[untouched])


# --- fused ops ------------------------------------------------------------------------------------------


def reference(case: Case, temperature: float | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 (z, log-softmax over allowed, log Z) from the float32-scaled logits both paths compute."""
    flat = case.logits.reshape(case.rows, -1).float()
    if isinstance(temperature, torch.Tensor):
        t = temperature.reshape(-1, 1).float()
        z = flat * torch.where(t > 0, 1.0 / t, torch.ones_like(t))
    else:
        z = flat * (1.0 / temperature if temperature > 0 else 1.0)
    z64 = z.double().numpy()
    allowed = case.allowed()
    with np.errstate(invalid="ignore", divide="ignore"):
        za = np.where(allowed, z64, -np.inf)
        m = np.max(za, axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        lse_allowed = m + np.log(np.exp(za - m).sum(1, keepdims=True))
        m_all = np.max(z64, axis=1, keepdims=True)
        lse_all = m_all + np.log(np.exp(z64 - m_all).sum(1, keepdims=True))
        logp = np.where(allowed & np.isfinite(lse_allowed), z64 - lse_allowed, -np.inf)
        log_z = np.where(np.isfinite(lse_allowed), lse_allowed - lse_all, -np.inf)[:, 0]
    return z64, logp, log_z


def assert_close_inf(actual: np.ndarray, expected: np.ndarray, atol: float) -> None:
    assert np.array_equal(np.isneginf(actual), np.isneginf(expected))
    assert not np.isnan(actual).any()
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_and_log_mass_match_reference(dtype: torch.dtype) -> None:
    for i, case in enumerate(cases(dtype)):
        temperature: float | torch.Tensor = [1.0, 0.7, 1.6][i % 3]
        if i == 4:  # per-row temperatures, one of them "greedy" (counts as T = 1)
            temperature = torch.linspace(0, 2, case.rows)
        _, logp, log_z = reference(case, temperature)
        for backend in FUSED_BACKENDS:
            out = masked_log_softmax(
                case.logits,
                case.bitmask,
                temperature,
                case.indices,
                case.vocab_size,
                dtype=torch.float32,
                backend=backend,
            )
            assert out.shape == case.logits.shape and out.dtype == torch.float32
            assert_close_inf(out.reshape(case.rows, -1).numpy(), logp, atol=2e-5)
            lz = allowed_log_mass(
                case.logits, case.bitmask, temperature, case.indices, case.vocab_size, backend=backend
            )
            assert lz.shape == case.logits.shape[:-1]
            assert_close_inf(lz.reshape(-1).numpy(), log_z, atol=2e-5)
        native = [
            masked_log_softmax(
                case.logits, case.bitmask, temperature, case.indices, case.vocab_size, backend=b
            )
            for b in FUSED_BACKENDS
        ]
        assert native[0].dtype == dtype
        # the same float32 value rounded to the logits' dtype: at most one unit in the last place apart
        for other in native[1:]:
            torch.testing.assert_close(native[0], other, rtol=2**-7, atol=0)


def test_log_mass_edge_rows() -> None:
    """All allowed: log Z = 0; none allowed (or only -inf logits allowed): -inf, and log-probs all -inf."""
    case = make_case(21, torch.float32, (4, 700), 700, kinds=["all", "none", "allowed_all_neg_inf", "single"])
    for backend in FUSED_BACKENDS:
        lz = allowed_log_mass(case.logits, case.bitmask, backend=backend)
        assert abs(float(lz[0])) < 1e-6
        assert lz[1] == float("-inf") and lz[2] == float("-inf")
        token = int(bitmask_to_ids(case.bitmask[3].numpy(), 700)[0])
        assert abs(float(lz[3]) - float(torch.log_softmax(case.logits[3], -1)[token])) < 1e-5
        lp = masked_log_softmax(case.logits, case.bitmask, backend=backend)
        assert torch.isneginf(lp[1:3]).all()
        assert lp[3, token] == 0 and torch.isneginf(lp[3]).sum() == 699


def cdf_of(case: Case, temperature: float | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """float64 renormalised CDF over allowed tokens in id order, and the per-token probabilities."""
    z64, _, _ = reference(case, temperature)
    za = np.where(case.allowed(), z64, -np.inf)
    m = za.max(1, keepdims=True)
    with np.errstate(invalid="ignore"):
        p = np.exp(za - np.where(np.isfinite(m), m, 0.0))
    total = p.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.cumsum(p, 1) / total, p / total


def mixed_temperatures(rows: int) -> torch.Tensor:
    """Per-row temperatures including greedy rows (0)."""
    return torch.tensor([0.0, 1.0, 0.3, 1.5])[torch.arange(rows) % 4]


def midpoint_uniforms(
    case: Case, temperature: float | torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, np.ndarray]:
    """Per row, u in the middle of the CDF step of a random token with probability > 1e-3, and the token
    every correct sampler must return for it (the argmax for greedy rows, -1 for rows with no mass)."""
    cdf, p = cdf_of(case, temperature)
    u = np.zeros(case.rows, np.float32)
    expected = np.full(case.rows, -1)
    for r in range(case.rows):
        ok = np.flatnonzero(p[r] > 1e-3)
        if ok.size:
            j = int(rng.choice(ok))
            u[r] = cdf[r, j] - p[r, j] / 2
            expected[r] = j
    if isinstance(temperature, torch.Tensor):
        z64, _, _ = reference(case, temperature)
        za = np.where(case.allowed(), z64, -np.inf)
        greedy = temperature.numpy() <= 0
        expected[greedy] = np.where(np.isfinite(za.max(1)), za.argmax(1), -1)[greedy]
    return torch.from_numpy(u), expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_exact_in_the_middle_of_cdf_steps(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(31)
    for i, case in enumerate(cases(dtype)):
        temperature = mixed_temperatures(case.rows) if i % 3 == 0 else [1.0, 0.5, 2.0][i % 3]
        uniforms, expected = midpoint_uniforms(case, temperature, rng)
        log_z = reference(case, temperature)[2]
        for backend in FUSED_BACKENDS:
            tokens, lz = masked_sample(
                case.logits,
                case.bitmask,
                temperature,
                None,
                case.indices,
                case.vocab_size,
                uniforms=uniforms,
                backend=backend,
            )
            assert tokens.dtype == torch.int64 and tokens.shape == case.logits.shape[:-1]
            np.testing.assert_array_equal(tokens.reshape(-1).numpy(), expected, err_msg=f"{backend} case {i}")
            assert_close_inf(lz.reshape(-1).numpy(), log_z, atol=2e-5)


def test_sample_any_uniform_lands_in_its_cdf_step() -> None:
    rng = np.random.default_rng(41)
    for i, case in enumerate(cases(torch.float32)):
        cdf, p = cdf_of(case, 0.8)
        u = rng.random(case.rows).astype(np.float32)
        u[0] = np.float32(1 - 2**-24)  # the largest uniform we ever draw
        for backend in FUSED_BACKENDS:
            tokens, _ = masked_sample(
                case.logits,
                case.bitmask,
                0.8,
                None,
                case.indices,
                case.vocab_size,
                uniforms=torch.from_numpy(u),
                backend=backend,
            )
            for r, t in enumerate(tokens.reshape(-1).tolist()):
                if not np.isfinite(cdf[r, -1]):
                    assert t == -1
                    continue
                assert p[r, t] > 0, (backend, i, r)  # never a disallowed or zero-probability token
                below = cdf[r, t] - p[r, t]
                assert below - 1e-5 <= u[r] <= cdf[r, t] + 1e-5, (backend, i, r, u[r], below, cdf[r, t])


def test_greedy_is_allowed_argmax_lowest_id_and_log_z_at_t1() -> None:
    case = make_case(
        51, torch.float32, (5, 2100), 2100, kinds=["random", "sparse", "none", "single", "dense"]
    )
    case.logits[0, :] = 1.0  # all tied: the lowest allowed id wins
    z64, _, log_z_t1 = reference(case, 1.0)
    za = np.where(case.allowed(), z64, -np.inf)
    expected = np.where(np.isfinite(za.max(1)), za.argmax(1), -1)
    for backend in FUSED_BACKENDS:
        tokens, lz = masked_sample(case.logits, case.bitmask, 0.0, backend=backend)
        np.testing.assert_array_equal(tokens.numpy(), expected)
        assert_close_inf(lz.numpy(), log_z_t1, atol=2e-5)


def test_philox_matches_random123_known_answers() -> None:
    """Counters/keys and outputs from Random123's kat_vectors for philox4x32_10."""
    vectors = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            [0xA4093822, 0x299F31D0],
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ]
    for ctr, key, out in vectors:
        got = philox4x32(np.array([ctr], np.uint32), np.array([key], np.uint32))[0]
        assert got.tolist() == out


def test_seeded_sampling_same_draws_on_both_backends() -> None:
    """A seed gives the same tokens on the torch path (Philox in numpy) and in the kernel (tl.randint)."""
    case = make_case(61, torch.float32, (24, 900), 900, kinds=["random", "sparse", "dense"])
    cdf, p = cdf_of(case, 1.0)
    for seed in (7, torch.tensor(2**40 + 3), torch.arange(24, dtype=torch.int64) * 1000 - 5000):
        u = seeded_uniforms(seed if isinstance(seed, torch.Tensor) else torch.tensor(seed), case.rows).numpy()
        expected = (cdf <= u[:, None]).sum(1)
        results = [masked_sample(case.logits, case.bitmask, 1.0, seed, backend=b)[0] for b in FUSED_BACKENDS]
        for other in results[1:]:
            assert torch.equal(results[0], other)
        margin = np.minimum(
            np.abs(cdf[np.arange(24), expected] - u),
            np.abs(cdf[np.arange(24), expected] - p[np.arange(24), expected] - u),
        )
        sure = margin > 1e-5  # away from a CDF step, the float64 answer is the only answer
        np.testing.assert_array_equal(results[0].numpy()[sure], expected[sure])
    for backend in FUSED_BACKENDS:
        a = masked_sample(case.logits, case.bitmask, 1.0, 7, backend=backend)[0]
        b = masked_sample(case.logits, case.bitmask, 1.0, 8, backend=backend)[0]
        assert not torch.equal(a, b)


def test_sampling_frequencies_follow_the_renormalised_distribution() -> None:
    """Many rows with one distribution over 6 allowed tokens, each row its own seed: a chi-square check.

    The kernel sees a slice of the rows (the interpreter is slow) and must draw exactly the same tokens.
    """
    rows, vocab = 4000, 64
    probs = np.array([0.05, 0.1, 0.15, 0.2, 0.22, 0.28])
    ids = np.array([3, 9, 10, 31, 32, 63])
    logits = torch.full((rows, vocab), 5.0)  # disallowed tokens carry most of the raw mass
    logits[:, ids] = torch.from_numpy(np.log(probs)).float()
    bitmask = torch.from_numpy(np.tile(ids_to_bitmask(ids, vocab), (rows, 1)))
    seeds = torch.arange(rows, dtype=torch.int64) * 7919 + 17
    tokens, log_z = masked_sample(logits, bitmask, 1.0, seeds, backend="torch")
    counts = np.array([(tokens == t).sum().item() for t in ids])
    assert counts.sum() == rows
    chi2 = (((counts - rows * probs) ** 2) / (rows * probs)).sum()
    assert chi2 < 20.5, counts  # p = 0.001 at 5 degrees of freedom; the seeds are fixed, so no flakes
    expected_lz = float(np.log(1.0) - np.log(1.0 + (vocab - 6) * np.exp(5.0)))
    assert abs(float(log_z[0]) - expected_lz) < 1e-5
    part = slice(0, 300)
    for backend in TRITON:
        kernel_tokens, kernel_lz = masked_sample(
            logits[part], bitmask[part], 1.0, seeds[part], backend=backend
        )
        assert torch.equal(kernel_tokens, tokens[part])
        torch.testing.assert_close(kernel_lz, log_z[part], rtol=0, atol=1e-5)


# --- API contract ---------------------------------------------------------------------------------------


def test_validation_errors() -> None:
    logits = torch.zeros(2, 64)
    bitmask = torch.full((2, 2), -1, dtype=torch.int32)
    with pytest.raises(TypeError):
        apply_token_bitmask_(logits, bitmask.long())
    with pytest.raises(TypeError):
        apply_token_bitmask_(logits.double(), bitmask)
    with pytest.raises(ValueError):
        apply_token_bitmask_(logits, bitmask[:1])  # row count mismatch
    with pytest.raises(ValueError):
        apply_token_bitmask_(logits, bitmask, vocab_size=65)  # more tokens than the bitmask holds
    with pytest.raises(ValueError):
        apply_token_bitmask_(torch.zeros(2, 64, 2)[..., 0], bitmask)  # vocab not contiguous
    with pytest.raises(ValueError):
        masked_log_softmax(logits, bitmask, 0.0)
    with pytest.raises(ValueError):
        masked_sample(logits, bitmask, torch.ones(3))
    with pytest.raises(ValueError):
        apply_token_bitmask_(logits, bitmask, backend="cuda")  # type: ignore[arg-type]


def test_generator_draws_are_reproducible() -> None:
    case = make_case(71, torch.float32, (16, 500), 500, kinds=["random"])
    draws = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(123)
        draws.append(masked_sample(case.logits, case.bitmask, 1.0, gen)[0])
    assert torch.equal(draws[0], draws[1])


def test_import_is_cheap() -> None:
    """``import constrain.kernels`` must not pull in triton or numba (CPU-only hosts, start-up time)."""
    code = "import sys, constrain.kernels; print('triton' in sys.modules, 'numba' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False"]
