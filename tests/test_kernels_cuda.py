"""constrain.kernels compiled for a real GPU: same answers as the CPU paths, no host synchronisation, and
replayable inside a CUDA graph. Skipped where there is no CUDA device (CI); run on the GPU machine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from constrain.kernels import allowed_log_mass, apply_token_bitmask_, masked_log_softmax, masked_sample
from constrain.kernels._torch import seeded_uniforms
from test_kernels import (
    DTYPES,
    Case,
    assert_close_inf,
    cases,
    cdf_of,
    make_case,
    midpoint_uniforms,
    mixed_temperatures,
    reference,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpu_cases(dtype: torch.dtype) -> list[Case]:
    """The CPU test layouts plus production sizes (these pick other block sizes and warp counts)."""
    return [
        *cases(dtype),
        make_case(90, dtype, (1, 128256), 128256),
        make_case(91, dtype, (64, 151936), 151936),
        make_case(92, dtype, (3, 4, 32000), 32000, flat_bitmask=False),
        make_case(93, dtype, (9, 49155), 49152, vocab_size=49150),
    ]


def cuda_args(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    indices = torch.tensor(case.indices, device="cuda") if case.indices is not None else None
    return case.logits.cuda(), case.bitmask.cuda(), indices


@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_mask_bit_identical_to_cpu(dtype: torch.dtype) -> None:
    for case in gpu_cases(dtype):
        expected = case.logits.clone()
        apply_token_bitmask_(expected, case.bitmask, case.indices, case.vocab_size, backend="torch")
        logits, bitmask, indices = cuda_args(case)
        apply_token_bitmask_(logits, bitmask, indices, case.vocab_size)
        assert torch.equal(logits.cpu(), expected), case.logits.shape


@pytest.mark.parametrize("store_only", [False, True])
def test_cuda_mask_write_strategies(store_only: bool) -> None:
    from constrain.kernels import _triton, api

    for dtype in DTYPES:
        for case in gpu_cases(dtype):
            expected = case.logits.clone()
            apply_token_bitmask_(expected, case.bitmask, case.indices, case.vocab_size, backend="torch")
            logits, bitmask, indices = cuda_args(case)
            v = api._prepare(logits, bitmask, indices, case.vocab_size)
            _triton.apply_mask_(
                logits, v.bitmask, v.rows, v.positions, v.vocab_size, v.indices, store_only=store_only
            )
            assert torch.equal(logits.cpu(), expected), (dtype, case.logits.shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_fused_ops_match_reference(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(5)
    for i, case in enumerate(gpu_cases(dtype)):
        temperature = mixed_temperatures(case.rows) if i % 3 == 0 else [1.0, 0.6, 1.7][i % 3]
        _, logp, log_z = reference(case, temperature)
        logits, bitmask, indices = cuda_args(case)
        temp = temperature.cuda() if isinstance(temperature, torch.Tensor) else temperature
        lp = masked_log_softmax(logits, bitmask, temp, indices, case.vocab_size, dtype=torch.float32)
        assert_close_inf(lp.reshape(case.rows, -1).cpu().numpy(), logp, atol=3e-5)
        lz = allowed_log_mass(logits, bitmask, temp, indices, case.vocab_size)
        assert_close_inf(lz.reshape(-1).cpu().numpy(), log_z, atol=3e-5)
        uniforms, expected = midpoint_uniforms(case, temperature, rng)
        tokens, lz2 = masked_sample(
            logits, bitmask, temp, None, indices, case.vocab_size, uniforms=uniforms.cuda()
        )
        np.testing.assert_array_equal(tokens.reshape(-1).cpu().numpy(), expected, err_msg=f"case {i}")
        assert_close_inf(lz2.reshape(-1).cpu().numpy(), log_z, atol=3e-5)


def test_cuda_seeded_draws_match_cpu() -> None:
    case = make_case(94, torch.float32, (48, 20000), 20000, kinds=["random", "sparse", "dense"])
    cdf, p = cdf_of(case, 1.0)
    rows = np.arange(case.rows)
    for seed in (3, torch.arange(48, dtype=torch.int64) + 10**12):
        u = seeded_uniforms(torch.as_tensor(seed), case.rows).numpy()
        expected = (cdf <= u[:, None]).sum(1)
        gpu_seed = seed.cuda() if isinstance(seed, torch.Tensor) else seed
        tokens = masked_sample(case.logits.cuda(), case.bitmask.cuda(), 1.0, gpu_seed)[0].cpu().numpy()
        margin = np.minimum(
            np.abs(cdf[rows, expected] - u), np.abs(cdf[rows, expected] - p[rows, expected] - u)
        )
        sure = margin > 1e-5
        assert sure.sum() > 40
        np.testing.assert_array_equal(tokens[sure], expected[sure])


def test_cuda_graph_capture_without_host_sync() -> None:
    """Every entry point runs under sync-debug "error" and replays in a CUDA graph with the eager results."""
    case = make_case(95, torch.bfloat16, (8, 32000), 32000)
    logits = case.logits.cuda()
    bitmask = case.bitmask.cuda()
    indices = torch.tensor([0, 2, 3, 7], device="cuda")
    seed = torch.tensor([5], dtype=torch.int64, device="cuda")
    temperature = torch.linspace(0, 1.5, 8, device="cuda")

    def step() -> list[torch.Tensor]:
        masked = logits.clone()
        apply_token_bitmask_(masked, bitmask, indices)
        tokens, log_z = masked_sample(logits, bitmask, temperature, seed, indices)
        greedy, _ = masked_sample(logits, bitmask, 0.0)
        out = [masked, tokens, log_z, greedy, masked_log_softmax(logits, bitmask, 0.8)]
        out.append(allowed_log_mass(logits.view(2, 4, -1), bitmask.view(2, 4, -1), temperature))
        seed.add_(1)  # the next step draws fresh uniforms, inside the graph too
        return out

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()  # compile and warm up outside the capture
    torch.cuda.current_stream().wait_stream(side)

    torch.cuda.set_sync_debug_mode("error")
    try:
        seed.fill_(5)
        eager = [step(), step()]
    finally:
        torch.cuda.set_sync_debug_mode(0)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static = step()
    seed.fill_(5)
    for expected in eager:
        graph.replay()
        for got, want in zip(static, expected, strict=True):
            assert torch.equal(got, want)
