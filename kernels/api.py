"""Public entry points: validate on the host (shapes only, never device values), then dispatch by device.

CUDA tensors go to the Triton kernels; CPU tensors to numba (the in-place mask and bit unpacking) and
torch. ``backend=`` forces one path; tests use ``backend="triton"`` on CPU tensors under
``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch

from . import _torch

Backend = Literal["auto", "torch", "numba", "triton"]
Indices = torch.Tensor | Sequence[int] | None
Temperature = float | torch.Tensor
Seed = torch.Generator | int | torch.Tensor | None

_FLOATS = (torch.float32, torch.bfloat16, torch.float16)


class _Rows(NamedTuple):
    """Logits and bitmask seen as rows: flattened row ``r`` is ``logits[r // positions, r % positions]``."""

    logits: torch.Tensor  # the caller's [batch, vocab] or [batch, positions, vocab] tensor
    rows: int
    positions: int
    width: int
    bitmask: torch.Tensor  # [rows, words] (or more rows when indices pick some)
    vocab_size: int
    indices: torch.Tensor | None
    lead_shape: tuple[int, ...]


def _prepare(logits: torch.Tensor, bitmask: torch.Tensor, indices: Indices, vocab_size: int | None) -> _Rows:
    """Check shapes, dtypes and devices (host metadata only) and flatten to rows."""
    shape, device = logits.shape, logits.device
    if len(shape) not in (2, 3):
        raise ValueError(f"logits must be [batch, vocab] or [batch, positions, vocab], got {tuple(shape)}")
    if logits.dtype not in _FLOATS:
        raise TypeError(f"logits must be float32, bfloat16 or float16, got {logits.dtype}")
    if shape[-1] > 1 and logits.stride(-1) != 1:
        raise ValueError("logits must be contiguous along the vocabulary (stride 1 in the last dimension)")
    if bitmask.dtype != torch.int32:
        raise TypeError(f"bitmask must be int32, got {bitmask.dtype}")
    if bitmask.device != device:
        raise ValueError(f"bitmask is on {bitmask.device} but logits on {device}")
    lead_shape = tuple(shape[:-1])
    positions = shape[1] if len(shape) == 3 else 1
    rows = shape[0] * positions
    bshape = bitmask.shape
    words = bshape[-1]
    if len(bshape) == 3:
        if tuple(bshape[:2]) != lead_shape:
            raise ValueError(f"a 3-D bitmask must be [batch, positions, words] matching logits {lead_shape}")
        bitmask = bitmask.reshape(rows, words)
    elif len(bshape) != 2:
        raise ValueError(f"bitmask must be [rows, words] or [batch, positions, words], got {tuple(bshape)}")
    if words > 1 and bitmask.stride(-1) != 1:
        bitmask = bitmask.contiguous()
    if vocab_size is None:
        vocab_size = 32 * words
    elif not 0 <= vocab_size <= 32 * words:
        raise ValueError(
            f"vocab_size {vocab_size} needs {(vocab_size + 31) // 32} words; bitmask has {words}"
        )
    idx: torch.Tensor | None = None
    if indices is not None:
        if isinstance(indices, torch.Tensor):
            if indices.dim() != 1 or indices.dtype not in (torch.int32, torch.int64):
                raise TypeError("indices must be a 1-D int32 or int64 tensor")
            idx = indices if indices.device == device else indices.to(device, non_blocking=True)
        else:
            idx = torch.tensor(list(indices), dtype=torch.int32).to(device, non_blocking=True)
    elif bitmask.shape[0] != rows:
        raise ValueError(f"bitmask has {bitmask.shape[0]} rows for {rows} logits rows")
    return _Rows(logits, rows, positions, shape[-1], bitmask, vocab_size, idx, lead_shape)


def _triton(backend: Backend, device: torch.device) -> bool:
    if backend not in ("auto", "torch", "numba", "triton"):
        raise ValueError(f"unknown backend {backend!r}")
    return backend == "triton" or (backend == "auto" and device.type == "cuda")


def _temperature(temperature: Temperature, v: _Rows) -> Temperature:
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != v.rows or not temperature.is_floating_point():
            raise ValueError(
                f"a temperature tensor needs one float per row ({v.rows}), got {temperature.shape}"
            )
        if temperature.device != v.logits.device:
            raise ValueError("the temperature tensor must be on the logits' device")
        return temperature.reshape(v.rows)
    return float(temperature)


def _cpu_allowed(v: _Rows, backend: Backend) -> torch.Tensor:
    """Bool [rows, width] for the CPU paths (numba unpacking unless ``backend="torch"``)."""
    if backend != "torch" and v.logits.device.type == "cpu":
        from . import _numba

        return _numba.allowed_rows(v.bitmask, v.rows, v.width, v.vocab_size, v.indices)
    return _torch.allowed_rows(v.bitmask, v.rows, v.width, v.vocab_size, v.indices)


def _rowmap(v: _Rows) -> torch.Tensor | None:
    """For the fused kernels: the bitmask row of each logits row, -1 for rows outside ``indices``."""
    if v.indices is None:
        return None
    rowmap = torch.full((v.rows,), -1, dtype=torch.int32, device=v.logits.device)
    rowmap[v.indices.long()] = v.indices.to(torch.int32)
    return rowmap


def apply_token_bitmask_(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: Indices = None,
    vocab_size: int | None = None,
    *,
    backend: Backend = "auto",
) -> None:
    """Set disallowed logits to -inf, in place.

    ``logits`` ``[batch, vocab]`` or ``[batch, positions, vocab]`` (speculative verification, diffusion
    decoding) in float32/bfloat16/float16; ``bitmask`` int32 ``[rows, ceil(vocab/32)]`` where rows =
    batch (x positions), or ``[batch, positions, words]``. Token ``i`` of a row is kept iff bit ``i % 32``
    of word ``i // 32`` is set and ``i < vocab_size`` (default: 32 x words), so logits wider than the
    bitmask, or than ``vocab_size``, get -inf in the extra columns.

    ``indices`` (flattened row ids, list or int tensor) restricts the operation to those rows, of both
    logits and bitmask; other rows are untouched. Pass a device tensor when capturing a CUDA graph.
    """
    v = _prepare(logits, bitmask, indices, vocab_size)
    if _triton(backend, logits.device):
        from . import _triton as tri

        tri.apply_mask_(logits, v.bitmask, v.rows, v.positions, v.vocab_size, v.indices)
        return
    if backend in ("auto", "numba") and logits.device.type == "cpu":
        from . import _numba

        try:
            logits2d = logits.view(v.rows, v.width)
        except RuntimeError:  # a 3-D view whose rows cannot be flattened: the torch path handles any strides
            logits2d = None
        if logits2d is not None:
            _numba.apply_mask_(logits2d, v.bitmask, v.vocab_size, v.indices)
            return
    _torch.apply_mask_(logits, v.bitmask, v.vocab_size, v.indices)


def masked_log_softmax(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    temperature: Temperature = 1.0,
    indices: Indices = None,
    vocab_size: int | None = None,
    *,
    dtype: torch.dtype | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """log softmax(logits / T) renormalised over the allowed tokens, fused: the logits are read twice and
    the output written once, with no masked copy in between.

    Disallowed tokens get -inf; a row with no allowed token (or only -inf logits) is all -inf, never
    NaN. Rows outside ``indices`` are unconstrained (plain log softmax). ``temperature`` is a float > 0
    or a float tensor with one value per row (rows with T <= 0 use T = 1). Output has the logits' shape,
    in ``dtype`` (default: the logits' dtype); the arithmetic is float32.
    """
    v = _prepare(logits, bitmask, indices, vocab_size)
    if not isinstance(temperature, torch.Tensor) and temperature <= 0:
        raise ValueError("masked_log_softmax needs temperature > 0")
    temp = _temperature(temperature, v)
    out_dtype = dtype or logits.dtype
    if _triton(backend, logits.device):
        from . import _triton as tri

        out = tri.masked_log_softmax(
            logits, v.bitmask, v.rows, v.positions, v.vocab_size, _rowmap(v), temp, out_dtype
        )
    else:
        flat = logits.reshape(v.rows, v.width)
        out = _torch.masked_log_softmax(flat, _cpu_allowed(v, backend), temp, out_dtype)
    return out if out.dim() == logits.dim() else out.view(logits.shape)


def allowed_log_mass(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    temperature: Temperature = 1.0,
    indices: Indices = None,
    vocab_size: int | None = None,
    *,
    backend: Backend = "auto",
) -> torch.Tensor:
    """log Z per row: log of the probability mass softmax(logits / T) puts on allowed tokens.

    The local normaliser SMC and AWRS weight particles by: ``logsumexp(allowed) - logsumexp(all)`` in
    float32, 0 when everything is allowed, -inf when nothing is. T <= 0 counts as T = 1. Rows outside
    ``indices`` are unconstrained (log Z = 0). Shape: the logits' leading dimensions.
    """
    v = _prepare(logits, bitmask, indices, vocab_size)
    temp = _temperature(temperature, v)
    if _triton(backend, logits.device):
        from . import _triton as tri

        log_z = tri.allowed_log_mass(logits, v.bitmask, v.rows, v.positions, v.vocab_size, _rowmap(v), temp)
    else:
        flat = logits.reshape(v.rows, v.width)
        log_z = _torch.allowed_log_mass(flat, _cpu_allowed(v, backend), temp)
    return log_z if len(v.lead_shape) == 1 else log_z.view(v.lead_shape)


def masked_sample(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    temperature: Temperature = 1.0,
    generator: Seed = None,
    indices: Indices = None,
    vocab_size: int | None = None,
    *,
    uniforms: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one allowed token per row from softmax(logits / T), fused with its log Z.

    Returns ``(tokens int64, log_z float32)``, each of the logits' leading shape. Sampling is by inverse
    CDF over the allowed tokens in id order with one uniform ``u`` per row: the token is the first whose
    cumulative renormalised probability exceeds ``u``. ``T <= 0`` (a float, or per row in a temperature
    tensor) is greedy: the allowed argmax, lowest id on ties; log Z is then reported at T = 1.

    Rows outside ``indices`` are sampled unconstrained. A row with no allowed token (or only -inf logits
    among them) returns token **-1** and log Z -inf:
    the sampler cannot continue that row, and a particle filter gives it zero weight. Callers must
    handle -1 before feeding tokens back to the model.

    Randomness, in order of precedence: ``uniforms`` (float32 ``[rows]`` in [0, 1), brought by the
    caller); ``generator`` as a seed: an int or an int64 tensor ``[]``/``[1]`` (row r draws Philox
    counter r) or ``[rows]`` (per-row seeds, counter 0): the same draws on CPU and GPU, and a device seed
    tensor keeps the call graph-capturable (advance it in place between steps); ``generator`` as a
    ``torch.Generator``, or None for torch's default one, draws ``u`` with ``torch.rand``.
    """
    v = _prepare(logits, bitmask, indices, vocab_size)
    temp = _temperature(temperature, v)
    greedy = isinstance(temp, float) and temp <= 0
    seed: torch.Tensor | None = None
    if uniforms is not None:
        if uniforms.numel() != v.rows or uniforms.device != logits.device:
            raise ValueError(f"uniforms must be {v.rows} floats on {logits.device}")
        uniforms = uniforms.reshape(v.rows).float()
    elif isinstance(generator, (int, torch.Tensor)):
        seed = _seed(generator, v)
    elif not greedy:
        uniforms = torch.rand(v.rows, generator=generator, device=logits.device)
    if _triton(backend, logits.device):
        from . import _triton as tri

        tokens, log_z = tri.masked_sample(
            logits, v.bitmask, v.rows, v.positions, v.vocab_size, _rowmap(v), temp, uniforms, seed
        )
    else:
        if uniforms is None:
            uniforms = _torch.seeded_uniforms(seed, v.rows) if seed is not None else torch.zeros(v.rows)
        flat = logits.reshape(v.rows, v.width)
        tokens, log_z = _torch.masked_sample(flat, _cpu_allowed(v, backend), temp, uniforms)
    if len(v.lead_shape) == 1:  # already [rows]; a view costs microseconds on a busy host
        return tokens, log_z
    return tokens.view(v.lead_shape), log_z.view(v.lead_shape)


def _seed(seed: int | torch.Tensor, v: _Rows) -> torch.Tensor:
    if isinstance(seed, int):
        return torch.tensor([seed], dtype=torch.int64).to(v.logits.device)
    if seed.dtype not in (torch.int32, torch.int64) or seed.numel() not in (1, v.rows):
        raise ValueError(
            f"a seed tensor holds one int64 or one per row ({v.rows}), got {seed.dtype} {seed.shape}"
        )
    if seed.device != v.logits.device:
        raise ValueError("the seed tensor must be on the logits' device")
    return (seed if seed.dim() == 1 else seed.reshape(-1)).to(torch.int64)
