# Triton reads kernel parameter annotations itself (tl.constexpr), so @triton.jit functions stay unannotated.
# mypy: disable-error-code="no-untyped-def"
"""Triton kernels (CUDA, or numpy under ``TRITON_INTERPRET=1``). Imported only when needed.

Layout shared by every kernel: flattened logits row ``r`` lives at ``(r // positions) * stride_b +
(r % positions) * stride_p`` (so ``[batch, positions, vocab]`` views need no copy), its bitmask row is
``r`` of the 2-D bitmask view, and tokens are handled as ``[BLOCK // 32, 32]`` tiles: tile row ``i`` is
bitmask word ``i``, so each word is loaded once and broadcast over its 32 tokens.

Nothing here reads a device value on the host: every launch is capturable in a CUDA graph.

Fused ops work in two launches over ``[rows, blocks]`` programs so batch 1 still fills the GPU:
``_stats_kernel`` writes per-block partials (max and sum of exp over allowed tokens, over all tokens,
and optionally the allowed argmax) to one float32 workspace, then one per-row kernel combines them
(``_finish_kernel``: log Z and the sampled token) or one per-block kernel writes the log-probs
(``_log_softmax_kernel``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
import triton
import triton.language as tl
from triton import knobs
from triton.compiler import CompiledKernel
from triton.runtime import driver
from triton.runtime.jit import JITFunction

NEG_INF: tl.constexpr = tl.constexpr(float("-inf"))


# The mask kernel skips reading the logits up to this many float32 bytes per launch. On an H100 with a cold
# L2 (benchmarks/README.md): reading, our kernel lost to xgrammar's store-only one by 0.1-0.6 µs on
# float32 launches of 1-8 rows (<= 5 MB); store-only, it wins there by 0.4-1.0 µs. From 12 MB up,
# full-vector read-modify-write beats store-only (xgrammar) by 25% or more, and in every bfloat16 cell,
# where store-only means 2-byte scalar stores; so 2-byte types always read.
STORE_ONLY_MAX_BYTES = 8 << 20

# Fused kernels: largest block, and the bytes per token assumed when picking warps (their math is float32).
# Swept on an H100 with bfloat16 logits (benchmarks/results/kernels_h100_sweep.json): 2048 tokens and 4
# warps per program is the fastest at batch 256 and within 9% of it from batch 8 up (batch 1 gets 1024
# from block_size); 8192 tokens ran 7-33% slower.
FUSED_LARGEST_BLOCK = 2048
FUSED_BYTES_PER_TOKEN = 4


@cache
def _programs_target(device_index: int) -> int:
    """About how many programs fill the device (4 per SM); a fixed stand-in for the interpreter (-1)."""
    if device_index < 0:
        return 4 * 128
    return 4 * int(torch.cuda.get_device_properties(device_index).multi_processor_count)


def block_size(rows: int, width: int, device_index: int, largest: int = 8192) -> int:
    """Tokens per program: big blocks when there is plenty of work, small ones so batch 1 spreads out."""
    per_program = max(1, rows * width // _programs_target(device_index))
    return max(1024, min(largest, triton.next_power_of_2(per_program)))


# --- shared pieces --------------------------------------------------------------------------------------


@triton.jit
def _row_start(row, positions, stride_b, stride_p):
    """Element offset of flattened row ``row`` in a [batch, positions, width] view."""
    row = row.to(tl.int64)
    return (row // positions) * stride_b + (row % positions) * stride_p


@triton.jit
def _tile(block, bitmask_ptr, bitmask_row, bitmask_stride, width, vocab_size, BLOCK: tl.constexpr):
    """Token ids ``[BLOCK//32, 32]`` of ``block``, which are in range, which allowed, and the words.

    ``bitmask_row`` < 0 marks an unconstrained row: all ``width`` tokens allowed.
    """
    WORDS: tl.constexpr = BLOCK // 32
    word_idx = block * WORDS + tl.arange(0, WORDS)
    # A block, not a scalar: the interpreter cannot combine a scalar mask with a block one.
    constrained = (word_idx * 0 + bitmask_row) >= 0
    words = tl.load(
        bitmask_ptr + bitmask_row.to(tl.int64) * bitmask_stride + word_idx,
        mask=constrained & (word_idx * 32 < vocab_size),
        other=0,
    )
    words = tl.where(constrained, words, -1)
    bit = tl.arange(0, 32)
    tok = word_idx[:, None] * 32 + bit[None, :]
    in_range = tok < width
    allowed = ((words[:, None] >> bit[None, :]) & 1) != 0
    allowed = allowed & in_range & ((tok < vocab_size) | ~constrained[:, None])
    return tok, in_range, allowed, words, word_idx


@triton.jit
def _inv_temperature(temp_ptr, temp_scalar, row, PER_ROW_TEMP: tl.constexpr):
    """1/T for this row; T <= 0 (greedy) counts as T = 1 for every statistic."""
    if PER_ROW_TEMP:
        t = tl.load(temp_ptr + row).to(tl.float32)
        return tl.where(t > 0, tl.math.div_rn(1.0, tl.where(t > 0, t, 1.0)), 1.0)
    else:
        return temp_scalar


# --- in-place mask --------------------------------------------------------------------------------------


@triton.jit
def _apply_mask_kernel(
    logits_ptr,
    bitmask_ptr,
    indices_ptr,
    width,
    vocab_size,
    positions,
    stride_b,
    stride_p,
    bitmask_stride,
    HAS_INDICES: tl.constexpr,
    STORE_ONLY: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Disallowed logits become -inf.

    Default: fully allowed words are skipped, fully disallowed ones are stored without being read, and
    only words with mixed bits are read and rewritten; masks are uniform over a word, so accesses stay
    16-byte vectors (a per-element store mask splits them into scalar stores). STORE_ONLY (small float32
    launches, see ``STORE_ONLY_MAX_BYTES``): never read, store -inf per element; the stores land in L2,
    which beats waiting for a read from memory when the whole launch is a few microseconds.
    """
    if HAS_INDICES:
        row = tl.load(indices_ptr + tl.program_id(0)).to(tl.int64)
    else:
        row = tl.program_id(0).to(tl.int64)
    tok, in_range, allowed, words, word_idx = _tile(
        tl.program_id(1), bitmask_ptr, row, bitmask_stride, width, vocab_size, BLOCK
    )
    ptrs = logits_ptr + _row_start(row, positions, stride_b, stride_p) + tok
    if STORE_ONLY:
        tl.store(ptrs, tl.full(tok.shape, NEG_INF, logits_ptr.dtype.element_ty), mask=in_range & ~allowed)
    else:
        complete = (words == -1) & (word_idx * 32 + 32 <= vocab_size)
        touch = in_range & ~complete[:, None]
        mixed = touch & (words != 0)[:, None]
        x = tl.load(ptrs, mask=mixed, other=NEG_INF)
        tl.store(ptrs, tl.where(allowed, x, NEG_INF), mask=touch)


# --- fused statistics, sampling and log-softmax -----------------------------------------------------------


@triton.jit
def _stats_kernel(
    logits_ptr,
    bitmask_ptr,
    rowmap_ptr,
    temp_ptr,
    temp_scalar,
    part_ptr,
    width,
    vocab_size,
    positions,
    stride_b,
    stride_p,
    bitmask_stride,
    n_blocks,
    HAS_ROWMAP: tl.constexpr,
    PER_ROW_TEMP: tl.constexpr,
    WITH_ARGMAX: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Partials of one block: part[row, k, block] for k = max allowed, sum allowed, max all, sum all,
    and (WITH_ARGMAX) the bits of the lowest allowed id attaining the allowed max, as int32.

    Sums are of exp(z - the matching max), z = logits / T in float32. One exp per token: allowed tokens
    are taken relative to the allowed max, the rest relative to the overall max, so an allowed set far
    below the overall max keeps its own scale instead of underflowing.
    """
    row = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1)
    if HAS_ROWMAP:
        bitmask_row = tl.load(rowmap_ptr + row)
    else:
        bitmask_row = row
    tok, in_range, allowed, _, _ = _tile(
        block, bitmask_ptr, bitmask_row, bitmask_stride, width, vocab_size, BLOCK
    )
    x = tl.load(
        logits_ptr + _row_start(row, positions, stride_b, stride_p) + tok, mask=in_range, other=NEG_INF
    )
    z = x.to(tl.float32) * _inv_temperature(temp_ptr, temp_scalar, row, PER_ROW_TEMP)
    za = tl.where(allowed, z, NEG_INF)
    m_all = tl.max(tl.max(z, axis=1), axis=0)
    m_allowed = tl.max(tl.max(za, axis=1), axis=0)
    ref_all = tl.where(m_all == NEG_INF, 0.0, m_all)
    ref_allowed = tl.where(m_allowed == NEG_INF, 0.0, m_allowed)
    e = tl.exp(z - tl.where(allowed, ref_allowed, ref_all))
    s_allowed = tl.sum(tl.sum(tl.where(allowed, e, 0.0), axis=1), axis=0)
    s_rest = tl.sum(tl.sum(tl.where(allowed, 0.0, e), axis=1), axis=0)
    s_all = s_rest + s_allowed * tl.exp(ref_allowed - ref_all)

    out = part_ptr + row * 5 * n_blocks + block
    tl.store(out, m_allowed)
    tl.store(out + n_blocks, s_allowed)
    tl.store(out + 2 * n_blocks, m_all)
    tl.store(out + 3 * n_blocks, s_all)
    if WITH_ARGMAX:
        first = tl.min(tl.min(tl.where(allowed & (za == m_allowed), tok, 2147483647), axis=1), axis=0)
        tl.store(out + 4 * n_blocks, first.to(tl.float32, bitcast=True))


@triton.jit
def _combine(part_ptr, row, n_blocks, k, NB: tl.constexpr):
    """Block maxima, weights exp(max_b - M) * sum_b, and logsumexp of partial pair k (0 allowed, 2 all)."""
    b = tl.arange(0, NB)
    base = part_ptr + row * 5 * n_blocks + k * n_blocks
    m = tl.load(base + b, mask=b < n_blocks, other=NEG_INF)
    s = tl.load(base + n_blocks + b, mask=b < n_blocks, other=0.0)
    top = tl.max(m, axis=0)
    ref = tl.where(top == NEG_INF, 0.0, top)
    w = s * tl.exp(m - ref)
    total = tl.sum(w, axis=0)  # 0, or >= 1 (the block holding the max contributes exp(0))
    lse = tl.where(total > 0, ref + tl.log(tl.where(total > 0, total, 1.0)), NEG_INF)
    return m, w, ref, lse


@triton.jit
def _finish_kernel(
    logits_ptr,
    bitmask_ptr,
    rowmap_ptr,
    temp_ptr,
    temp_scalar,
    part_ptr,
    rand_ptr,
    rand_stride,
    tokens_ptr,
    log_z_ptr,
    width,
    vocab_size,
    positions,
    stride_b,
    stride_p,
    bitmask_stride,
    n_blocks,
    HAS_ROWMAP: tl.constexpr,
    PER_ROW_TEMP: tl.constexpr,
    WANT_TOKEN: tl.constexpr,
    SAMPLING: tl.constexpr,
    SEEDED: tl.constexpr,
    NB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One row: log Z from the partials and, if WANT_TOKEN, the token (greedy unless SAMPLING; u from a
    Philox seed if SEEDED, else from the uniforms tensor).

    Sampling is inverse-CDF: pick the block where the running allowed mass first exceeds u * Z, then
    scan that block alone, so the whole row is read once (by _stats_kernel) plus one block here.
    """
    row = tl.program_id(0).to(tl.int64)
    m_allowed, w, ref, lse_allowed = _combine(part_ptr, row, n_blocks, 0, NB)
    _, _, _, lse_all = _combine(part_ptr, row, n_blocks, 2, NB)
    dead = lse_allowed == NEG_INF
    tl.store(log_z_ptr + row, tl.where(dead, NEG_INF, lse_allowed - lse_all))
    if WANT_TOKEN:
        b = tl.arange(0, NB)
        best_block = tl.min(tl.where(m_allowed == tl.max(m_allowed, axis=0), b, NB), axis=0)
        best_block = tl.minimum(best_block, n_blocks - 1)
        token = (
            tl.load(part_ptr + (row * 5 + 4) * n_blocks + best_block).to(tl.int32, bitcast=True).to(tl.int64)
        )
        if SAMPLING:
            if SEEDED:
                seed = tl.load(rand_ptr + row * rand_stride)
                counter = tl.where(rand_stride == 0, row, 0)
                u = (tl.randint(seed, counter) >> 8).to(tl.float32) * (1.0 / 16777216.0)
            else:
                u = tl.load(rand_ptr + row * rand_stride).to(tl.float32)
            target = u * tl.sum(w, axis=0)
            cum = tl.cumsum(w, axis=0)
            last_block = tl.max(tl.where(w > 0, b, -1), axis=0)
            block = tl.minimum(tl.sum((cum <= target).to(tl.int32), axis=0), last_block)
            block = tl.maximum(block, 0)
            before = tl.sum(tl.where(b == block, cum - w, 0.0), axis=0)
            local = tl.maximum(target - before, 0.0)

            # Rescan the chosen block in 1-D (cumsum wants one axis): same token order as the tiles.
            tok = block * BLOCK + tl.arange(0, BLOCK)
            if HAS_ROWMAP:
                bitmask_row = tl.load(rowmap_ptr + row)
            else:
                bitmask_row = row
            constrained = (tok * 0 + bitmask_row) >= 0
            word = tl.load(
                bitmask_ptr + bitmask_row.to(tl.int64) * bitmask_stride + (tok >> 5),
                mask=constrained & (tok < vocab_size),
                other=0,
            )
            allowed = (((word >> (tok & 31)) & 1) != 0) | ~constrained
            allowed = allowed & (tok < width) & ((tok < vocab_size) | ~constrained)
            x = tl.load(
                logits_ptr + _row_start(row, positions, stride_b, stride_p) + tok, mask=tok < width, other=0.0
            )
            z = x.to(tl.float32) * _inv_temperature(temp_ptr, temp_scalar, row, PER_ROW_TEMP)
            p = tl.where(allowed, tl.exp(z - ref), 0.0)
            c = tl.cumsum(p, axis=0)
            pos = tl.arange(0, BLOCK)
            j = tl.minimum(
                tl.sum((c <= local).to(tl.int32), axis=0), tl.max(tl.where(p > 0, pos, -1), axis=0)
            )
            sampled = (block * BLOCK + j).to(tl.int64)
            if PER_ROW_TEMP:
                token = tl.where(tl.load(temp_ptr + row) > 0, sampled, token)
            else:
                token = sampled
        tl.store(tokens_ptr + row, tl.where(dead, -1, token))


@triton.jit
def _log_softmax_kernel(
    logits_ptr,
    bitmask_ptr,
    rowmap_ptr,
    temp_ptr,
    temp_scalar,
    part_ptr,
    out_ptr,
    width,
    vocab_size,
    positions,
    stride_b,
    stride_p,
    bitmask_stride,
    n_blocks,
    HAS_ROWMAP: tl.constexpr,
    PER_ROW_TEMP: tl.constexpr,
    NB: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """out[row, block] = z - logsumexp over allowed (recombined from the partials), -inf elsewhere."""
    row = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1)
    _, _, _, lse = _combine(part_ptr, row, n_blocks, 0, NB)
    if HAS_ROWMAP:
        bitmask_row = tl.load(rowmap_ptr + row)
    else:
        bitmask_row = row
    tok, in_range, allowed, _, _ = _tile(
        block, bitmask_ptr, bitmask_row, bitmask_stride, width, vocab_size, BLOCK
    )
    x = tl.load(logits_ptr + _row_start(row, positions, stride_b, stride_p) + tok, mask=in_range, other=0.0)
    z = x.to(tl.float32) * _inv_temperature(temp_ptr, temp_scalar, row, PER_ROW_TEMP)
    alive = lse > NEG_INF  # no allowed mass: all -inf rather than NaN
    out = tl.where(allowed, z - tl.where(alive, lse, 0.0), NEG_INF)
    out = tl.where(alive, out, NEG_INF)
    tl.store(out_ptr + row * width + tok, out.to(out_ptr.dtype.element_ty), mask=in_range)


# --- launchers ------------------------------------------------------------------------------------------


def _specialisation(arg: Any) -> Any:
    """What Triton specialises a kernel on for this argument (see ``triton.runtime.jit``)."""
    if isinstance(arg, torch.Tensor):
        return arg.dtype, arg.data_ptr() % 16 == 0
    if isinstance(arg, bool) or arg is None:
        return arg
    if isinstance(arg, int):
        return arg == 1, arg % 16 == 0, -(2**31) <= arg < 2**31
    return type(arg)  # floats: one float32 parameter whatever the value


class _Launcher:
    """Launches a @triton.jit kernel, skipping ``JITFunction.run`` once a specialisation is compiled.

    ``JITFunction.run`` re-derives the specialisation, cache key and options on every call: 27 µs per
    launch on the benchmark's H100 host against 18 µs for the compiled launcher alone, which is most of a
    batch-1 call. Here the cache key is what Triton specialises on (``_specialisation`` of each argument,
    the constexprs, ``num_warps``, the device); the first launch of a key goes through Triton, which
    compiles it, and later launches run the two statements that end ``JITFunction.run``. The interpreter
    always goes through Triton. Should the compiled launcher reject the arguments (another Triton
    version's calling convention), it raises before launching and we use ``JITFunction.run`` from then on.
    """

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.compiled: dict[tuple[Any, ...], Any] | None = {} if isinstance(fn, JITFunction) else None

    def __call__(self, grid: tuple[int, int], num_warps: int, *args: Any, **constexprs: Any) -> None:
        if self.compiled is None:
            self.fn[grid](*args, **constexprs, num_warps=num_warps)
            return
        device = driver.active.get_current_device()
        key = (device, num_warps, *map(_specialisation, args), *constexprs.values())
        kernel = self.compiled.get(key) if self.compiled is not None else None
        if kernel is not None:
            stream = driver.active.get_current_stream(device)
            every = (*args, *constexprs.values())
            try:
                kernel.run(
                    grid[0], grid[1], 1, stream, kernel.function, kernel.packed_metadata,
                    kernel.launch_metadata(grid, stream, *every),
                    knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook, *every,
                )  # fmt: skip
                return
            except TypeError:
                self.compiled = None
        kernel = self.fn[grid](*args, **constexprs, num_warps=num_warps)
        in_order = list(constexprs) == self.fn.arg_names[len(args) :]
        if self.compiled is not None and isinstance(kernel, CompiledKernel) and in_order:
            self.compiled[key] = kernel


_apply_mask = _Launcher(_apply_mask_kernel)
_stats = _Launcher(_stats_kernel)
_finish = _Launcher(_finish_kernel)
_log_softmax = _Launcher(_log_softmax_kernel)


def _warps(block: int, element_size: int) -> int:
    """Enough warps for one 16-byte access per thread per pass, between 4 and 16."""
    return max(4, min(16, block * element_size // (16 * 32 * 4)))


def apply_mask_(
    logits: torch.Tensor,
    bitmask_rows: torch.Tensor,
    rows: int,
    positions: int,
    vocab_size: int,
    indices: torch.Tensor | None,
    block: int | None = None,
    num_warps: int | None = None,
    store_only: bool | None = None,
) -> None:
    """In place; ``block``, ``num_warps`` and ``store_only`` override the heuristics (tests, sweeps)."""
    width = logits.shape[-1]
    n = indices.shape[0] if indices is not None else rows
    if n == 0 or width == 0:
        return
    block = block or block_size(n, width, logits.get_device())
    if store_only is None:
        store_only = logits.element_size() == 4 and n * width * 4 <= STORE_ONLY_MAX_BYTES
    strides = logits.stride()
    _apply_mask(
        (n, triton.cdiv(width, block)),
        num_warps or _warps(block, logits.element_size()),
        logits,
        bitmask_rows,
        indices,
        width,
        vocab_size,
        positions,
        strides[0],
        strides[1] if len(strides) == 3 else 0,
        bitmask_rows.stride(0),
        HAS_INDICES=indices is not None,
        STORE_ONLY=store_only,
        BLOCK=block,
    )


class _Fused:
    """Arguments shared by the fused launches, worked out once per call.

    ``block`` and ``num_warps`` override the heuristics (the benchmark's sweep uses them).
    """

    def __init__(
        self,
        logits: torch.Tensor,
        bitmask_rows: torch.Tensor,
        rows: int,
        positions: int,
        vocab_size: int,
        rowmap: torch.Tensor | None,
        temperature: float | torch.Tensor,
        block: int | None = None,
        num_warps: int | None = None,
    ) -> None:
        self.logits, self.rows, self.width = logits, rows, logits.shape[-1]
        self.block = block or block_size(rows, self.width, logits.get_device(), largest=FUSED_LARGEST_BLOCK)
        self.n_blocks = triton.cdiv(self.width, self.block)
        self.nb = max(2, triton.next_power_of_2(self.n_blocks))
        per_row = isinstance(temperature, torch.Tensor)
        scalar = 1.0 if per_row or temperature <= 0 else 1.0 / float(temperature)  # type: ignore[operator]
        strides = logits.stride()
        self.common = (logits, bitmask_rows, rowmap, temperature if per_row else None, scalar)
        self.shape = (
            self.width,
            vocab_size,
            positions,
            strides[0],
            strides[1] if len(strides) == 3 else 0,
            bitmask_rows.stride(0),
            self.n_blocks,
        )
        self.flags = {"HAS_ROWMAP": rowmap is not None, "PER_ROW_TEMP": per_row}
        self.warps = num_warps or _warps(self.block, FUSED_BYTES_PER_TOKEN)

    def stats(self, with_argmax: bool) -> torch.Tensor:
        """Partials ``[rows, 5, blocks]``: 4 float32 statistics and the allowed argmax's bits."""
        part = torch.empty(self.rows, 5, self.n_blocks, dtype=torch.float32, device=self.logits.device)
        _stats(
            (self.rows, self.n_blocks),
            self.warps,
            *self.common,
            part,
            *self.shape,
            **self.flags,
            WITH_ARGMAX=with_argmax,
            BLOCK=self.block,
        )
        return part

    def finish(
        self, want_token: bool, uniforms: torch.Tensor | None, seed: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log Z and, if ``want_token``, tokens: sampled with ``uniforms`` or ``seed``, else greedy."""
        dev = self.logits.device
        tokens = torch.empty(self.rows, dtype=torch.int64, device=dev)
        log_z = torch.empty(self.rows, dtype=torch.float32, device=dev)
        if self.rows == 0:
            return tokens, log_z
        part = self.stats(with_argmax=want_token)
        rand = uniforms if uniforms is not None else seed
        _finish(
            (self.rows, 1),
            self.warps,
            *self.common,
            part,
            rand,
            rand.stride(0) if rand is not None and rand.shape[0] > 1 else 0,
            tokens,
            log_z,
            *self.shape,
            **self.flags,
            WANT_TOKEN=want_token,
            SAMPLING=rand is not None,
            SEEDED=seed is not None,
            NB=self.nb,
            BLOCK=self.block,
        )
        return tokens, log_z

    def log_softmax(self, dtype: torch.dtype) -> torch.Tensor:
        out = torch.empty(self.rows, self.width, dtype=dtype, device=self.logits.device)
        if self.rows == 0 or self.width == 0:
            return out
        part = self.stats(with_argmax=False)
        _log_softmax(
            (self.rows, self.n_blocks),
            self.warps,
            *self.common,
            part,
            out,
            *self.shape,
            **self.flags,
            NB=self.nb,
            BLOCK=self.block,
        )
        return out


def allowed_log_mass(
    logits: torch.Tensor,
    bitmask_rows: torch.Tensor,
    rows: int,
    positions: int,
    vocab_size: int,
    rowmap: torch.Tensor | None,
    temperature: float | torch.Tensor,
) -> torch.Tensor:
    f = _Fused(logits, bitmask_rows, rows, positions, vocab_size, rowmap, temperature)
    return f.finish(False, None, None)[1]


def masked_sample(
    logits: torch.Tensor,
    bitmask_rows: torch.Tensor,
    rows: int,
    positions: int,
    vocab_size: int,
    rowmap: torch.Tensor | None,
    temperature: float | torch.Tensor,
    uniforms: torch.Tensor | None,
    seed: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy for every row when neither ``uniforms`` nor ``seed`` is given."""
    f = _Fused(logits, bitmask_rows, rows, positions, vocab_size, rowmap, temperature)
    return f.finish(True, uniforms, seed)


def masked_log_softmax(
    logits: torch.Tensor,
    bitmask_rows: torch.Tensor,
    rows: int,
    positions: int,
    vocab_size: int,
    rowmap: torch.Tensor | None,
    temperature: float | torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    return _Fused(logits, bitmask_rows, rows, positions, vocab_size, rowmap, temperature).log_softmax(dtype)
