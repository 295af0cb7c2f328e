"""GPU benchmark of constrain.kernels beside xgrammar, plain torch and a device-to-device copy.

    python benchmarks/bench_kernels.py --out-dir benchmarks/results --tag h100

Needs a CUDA GPU, triton, and ``constrain`` importable (``pip install .``; on a machine where the rest of the
package's dependencies are missing, put a folder holding ``constrain/__init__.py`` (empty),
``constrain/bitmask.py`` and ``constrain/kernels/`` on PYTHONPATH). xgrammar is optional: without it its
columns are empty.

What is measured, per (vocab, batch, dtype), with random logits and random bitmasks (each bit 50%: every
32-token word mixes allowed and disallowed tokens, the worst case for skipping work):

- ``*_us`` (GPU time): one call captured in a CUDA graph, replayed under ``triton.testing.do_bench``
  (median; CUDA events around each replay; L2 flushed before each), so host overhead and launch gaps
  between a call's kernels stay out. Where capture fails the call itself is timed (``graph: false``).
- ``*_eager_us``: host wall clock per call over back-to-back calls: Python dispatch and launches included,
  which on the benchmark host (a torch ``add_`` costs 11 µs there) dominates small batches.
- bandwidth: bytes read + written. The mask reads and rewrites the logits and reads the bitmask; the
  ceiling is a copy of a logits-sized buffer (read + write) timed the same way; ``pct_copy`` is the
  mask's bandwidth over the copy's.
- fused ops against their unfused torch equivalents, all on top of the same (our) mask.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from constrain.kernels import _torch as torch_path
from constrain.kernels import allowed_log_mass, apply_token_bitmask_, masked_log_softmax, masked_sample

VOCABS = [49152, 128256, 151936]
BATCHES = [1, 8, 64, 256]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
TEMPERATURE = 0.7


def gpu_us(fn: Callable[[], Any], notes: dict[str, Any] | None = None) -> float:
    """Device time of one call (see the module docstring)."""
    import triton.testing

    fn()  # compile and warm up outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    run: Callable[[], Any] = graph.replay
    try:
        with torch.cuda.graph(graph):
            fn()
    except RuntimeError as err:  # not capturable: time the eager call (host gaps included)
        torch.cuda.synchronize()
        if notes is not None:
            notes.setdefault("not_captured", []).append(repr(err)[:200])
        run = fn
    return float(triton.testing.do_bench(run, warmup=25, rep=60, return_mode="median")) * 1e3


def eager_us(fn: Callable[[], Any], calls: int = 200) -> float:
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def load_xgrammar() -> tuple[Callable[..., None] | None, str]:
    """xgrammar's public apply_token_bitmask_inplace, or (if the package cannot be imported here) its
    Triton kernel module, which is what the public function dispatches to for CUDA tensors."""
    try:
        import xgrammar

        version = getattr(xgrammar, "__version__", None) or importlib.metadata.version("xgrammar")
        return xgrammar.apply_token_bitmask_inplace, f"xgrammar {version} apply_token_bitmask_inplace"
    except Exception as err:  # import failures differ by version: record and fall back
        spec = importlib.util.find_spec("xgrammar")
        if spec is None or not spec.submodule_search_locations:
            return None, f"xgrammar unavailable: {err!r}"
        path = (
            Path(next(iter(spec.submodule_search_locations)))
            / "kernels/apply_token_bitmask_inplace_triton.py"
        )
        kspec = importlib.util.spec_from_file_location("xgr_triton_kernel", path)
        assert kspec is not None and kspec.loader is not None
        module = importlib.util.module_from_spec(kspec)
        kspec.loader.exec_module(module)
        return (
            module.apply_token_bitmask_inplace_triton,
            f"xgrammar Triton kernel file (import failed: {err!r})",
        )


def random_bitmask(batch: int, vocab: int, gen: torch.Generator) -> torch.Tensor:
    words = (vocab + 31) // 32
    return torch.randint(-(2**31), 2**31, (batch, words), generator=gen, dtype=torch.int64).to(torch.int32)


def grammar_like_bitmask(batch: int, vocab: int, gen: torch.Generator, dense: bool) -> torch.Tensor:
    """Runs of allowed ids (sparse: ~1% allowed) or a few holes (dense: ~99% allowed)."""
    allowed = torch.zeros(batch, vocab, dtype=torch.bool)
    for r in range(batch):
        starts = torch.randint(0, vocab, (40,), generator=gen)
        for s in starts.tolist():
            allowed[r, s : s + 32] = True
    if dense:
        allowed = ~allowed
    pad = (-vocab) % 32
    bits = torch.nn.functional.pad(allowed, (0, pad)).view(batch, -1, 32).to(torch.int64)
    words = (bits << torch.arange(32)).sum(-1)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def mask_cell(vocab: int, batch: int, dtype: torch.dtype, xgr: Callable[..., None] | None) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(vocab + batch)
    logits = torch.randn(batch, vocab, generator=gen).to(dtype).cuda()
    bitmask = random_bitmask(batch, vocab, gen).cuda()
    src = torch.randn(batch, vocab, generator=gen).to(dtype).cuda()
    dst = torch.empty_like(src)
    logit_bytes = logits.numel() * logits.element_size()
    mask_bytes = 2 * logit_bytes + bitmask.numel() * 4

    # correctness on the benchmark's own inputs before any timing
    expected = logits.clone()
    torch_path.apply_mask_(expected, bitmask, vocab, None)
    ours = logits.clone()
    apply_token_bitmask_(ours, bitmask)
    assert torch.equal(ours, expected), "constrain mask differs from the torch path"

    def run_ours() -> None:
        apply_token_bitmask_(logits, bitmask)

    def run_torch() -> None:
        torch_path.apply_mask_(logits, bitmask, vocab, None)

    row: dict[str, Any] = {"vocab": vocab, "batch": batch, "dtype": str(dtype).removeprefix("torch.")}
    row["copy_us"] = gpu_us(lambda: dst.copy_(src), row)
    row["ours_us"] = gpu_us(run_ours, row)
    row["torch_us"] = gpu_us(run_torch, row)
    row["ours_eager_us"] = eager_us(run_ours)
    if xgr is not None:
        check = logits.clone()
        xgr(check, bitmask)
        assert torch.equal(check, expected), "xgrammar differs from the torch path"
        row["xgr_us"] = gpu_us(lambda: xgr(logits, bitmask), row)
        row["xgr_eager_us"] = eager_us(lambda: xgr(logits, bitmask))
    copy_gbs = 2 * logit_bytes / row["copy_us"] / 1e3
    row["copy_gbs"] = copy_gbs
    for name in ("ours", "xgr", "torch"):
        if f"{name}_us" in row:
            gbs = mask_bytes / row[f"{name}_us"] / 1e3
            row[f"{name}_gbs"] = gbs
            row[f"{name}_pct_copy"] = 100 * gbs / copy_gbs
    return row


def fused_cell(vocab: int, batch: int, dtype: torch.dtype) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(7 * vocab + batch)
    logits = (2 * torch.randn(batch, vocab, generator=gen)).to(dtype).cuda()
    bitmask = random_bitmask(batch, vocab, gen).cuda()
    work = logits.clone()
    seed = torch.tensor([1], dtype=torch.int64, device="cuda")

    def sample_ours() -> Any:
        return masked_sample(logits, bitmask, TEMPERATURE, seed)

    def sample_torch() -> Any:
        apply_token_bitmask_(work, bitmask)
        probs = torch.softmax(work / TEMPERATURE, dim=-1, dtype=torch.float32)
        return torch.multinomial(probs, 1)

    def log_softmax_ours() -> Any:
        return masked_log_softmax(logits, bitmask, TEMPERATURE)

    def log_softmax_torch() -> Any:
        apply_token_bitmask_(work, bitmask)
        return torch.log_softmax(work / TEMPERATURE, dim=-1)

    def log_z_ours() -> Any:
        return allowed_log_mass(logits, bitmask, TEMPERATURE)

    def log_z_torch() -> Any:
        apply_token_bitmask_(work, bitmask)
        scaled = logits.float() / TEMPERATURE
        return torch.logsumexp(work.float() / TEMPERATURE, -1) - torch.logsumexp(scaled, -1)

    # the fused results against the unfused ones on these inputs
    torch.testing.assert_close(log_z_ours(), log_z_torch(), rtol=0, atol=1e-4)
    tokens, _ = sample_ours()
    assert bool((torch.gather(work, 1, tokens.unsqueeze(1)) > float("-inf")).all()), "sampled a masked token"

    row: dict[str, Any] = {"vocab": vocab, "batch": batch, "dtype": str(dtype).removeprefix("torch.")}
    for name, fn in [
        ("sample_ours", sample_ours),
        ("sample_torch", sample_torch),
        ("log_softmax_ours", log_softmax_ours),
        ("log_softmax_torch", log_softmax_torch),
        ("log_z_ours", log_z_ours),
        ("log_z_torch", log_z_torch),
    ]:
        row[f"{name}_us"] = gpu_us(fn, row)
        row[f"{name}_eager_us"] = eager_us(fn, calls=100)
    return row


def sweep() -> list[dict[str, Any]]:
    """Block size and warp count of the mask and fused kernels: the heuristics in _triton come from here."""
    from constrain.kernels import _triton

    out: list[dict[str, Any]] = []
    vocab = 151936
    seed = torch.tensor([1], dtype=torch.int64, device="cuda")
    for batch in BATCHES:
        for name, dtype in DTYPES.items():
            logits = torch.randn(batch, vocab, device="cuda").to(dtype)
            bitmask = random_bitmask(batch, vocab, torch.Generator().manual_seed(0)).cuda()
            for block in (1024, 2048, 4096, 8192):
                for warps in (4, 8, 16):
                    mask = partial(_triton.apply_mask_, logits, bitmask, batch, 1, vocab, None, block, warps)
                    cell = {"batch": batch, "dtype": name, "block": block, "warps": warps}
                    out.append({"kernel": "mask", **cell, "us": gpu_us(mask)})
                    if name != "bf16" or warps == 16:
                        continue
                    f = _triton._Fused(logits, bitmask, batch, 1, vocab, None, TEMPERATURE, block, warps)
                    for op, fn in (
                        ("sample", partial(f.finish, True, None, seed)),
                        ("log_z", partial(f.finish, False, None, None)),
                        ("log_softmax", partial(f.log_softmax, dtype)),
                    ):
                        out.append({"kernel": op, **cell, "us": gpu_us(fn)})
    return out


def best_configs(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (kernel, batch, dtype): the fastest block/warps and the spread."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kernel"], r["batch"], r["dtype"]), []).append(r)
    lines = []
    for (kernel, batch, dtype), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["us"])
        top = ", ".join(f"{r['block']}/{r['warps']}={r['us']:.1f}" for r in rs[:4])
        lines.append(f"{kernel:12s} batch {batch:3d} {dtype}: {top} ... worst {rs[-1]['us']:.1f}")
    return lines


def mask_shapes_cell() -> list[dict[str, Any]]:
    """Grammar-like masks: all-0 words are written without being read, all-1 words are skipped."""
    gen = torch.Generator().manual_seed(3)
    out = []
    for kind in ("sparse", "dense", "random"):
        for dtype in DTYPES.values():
            batch, vocab = 256, 128256
            logits = torch.randn(batch, vocab).to(dtype).cuda()
            if kind == "random":
                bitmask = random_bitmask(batch, vocab, gen).cuda()
            else:
                bitmask = grammar_like_bitmask(batch, vocab, gen, dense=kind == "dense").cuda()
            expected = logits.clone()
            torch_path.apply_mask_(expected, bitmask, vocab, None)
            got = logits.clone()
            apply_token_bitmask_(got, bitmask)
            assert torch.equal(got, expected)
            us = gpu_us(partial(apply_token_bitmask_, logits, bitmask))
            out.append({"mask": kind, "dtype": str(dtype), "batch": batch, "vocab": vocab, "ours_us": us})
    return out


def markdown(mask_rows: list[dict[str, Any]], fused_rows: list[dict[str, Any]]) -> str:
    def f(row: dict[str, Any], key: str, fmt: str = "{:.1f}") -> str:
        return fmt.format(row[key]) if key in row else "–"

    lines = [
        "| vocab | batch | dtype | copy µs | ours µs | ours % copy | xgrammar µs | xgrammar % copy "
        "| torch µs | ours eager µs | xgrammar eager µs |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mask_rows:
        lines.append(
            f"| {r['vocab']} | {r['batch']} | {r['dtype']} | {f(r, 'copy_us')} | {f(r, 'ours_us')} "
            f"| {f(r, 'ours_pct_copy', '{:.0f}%')} | {f(r, 'xgr_us')} | {f(r, 'xgr_pct_copy', '{:.0f}%')} "
            f"| {f(r, 'torch_us')} | {f(r, 'ours_eager_us')} | {f(r, 'xgr_eager_us')} |"
        )
    lines += [
        "",
        "| vocab | batch | dtype | fused sample µs | mask+softmax+multinomial µs | fused log-softmax µs "
        "| mask+log_softmax µs | fused log Z µs | mask+2×logsumexp µs | fused sample eager µs "
        "| mask+multinomial eager µs |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in fused_rows:
        lines.append(
            f"| {r['vocab']} | {r['batch']} | {r['dtype']} | {f(r, 'sample_ours_us')} "
            f"| {f(r, 'sample_torch_us')} | {f(r, 'log_softmax_ours_us')} | {f(r, 'log_softmax_torch_us')} "
            f"| {f(r, 'log_z_ours_us')} | {f(r, 'log_z_torch_us')} | {f(r, 'sample_ours_eager_us')} "
            f"| {f(r, 'sample_torch_eager_us')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--tag",
        default=torch.cuda.get_device_name().split()[-1].lower() if torch.cuda.is_available() else "cpu",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="also time block sizes and warp counts of every kernel"
    )
    parser.add_argument("--quick", action="store_true", help="one vocab, two batches (a smoke run)")
    args = parser.parse_args()
    import triton

    xgr, xgr_source = load_xgrammar()
    env = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "xgrammar": xgr_source,
        "timing": "GPU: one call in a CUDA graph, replays timed by triton.testing.do_bench (median, L2"
        " flushed before each); eager: host wall clock per call, back to back",
    }
    print(json.dumps(env, indent=1), flush=True)
    vocabs, batches = ([128256], [1, 256]) if args.quick else (VOCABS, BATCHES)
    mask_rows, fused_rows = [], []
    for vocab in vocabs:
        for batch in batches:
            for dtype in DTYPES.values():
                mask_rows.append(mask_cell(vocab, batch, dtype, xgr))
                fused_rows.append(fused_cell(vocab, batch, dtype))
                print(json.dumps(mask_rows[-1]), json.dumps(fused_rows[-1]), flush=True)
                torch.cuda.empty_cache()
    result: dict[str, Any] = {
        "env": env,
        "mask": mask_rows,
        "fused": fused_rows,
        "mask_shapes": mask_shapes_cell(),
    }
    if args.sweep:
        result["sweep"] = sweep()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"kernels_{args.tag}.json").write_text(json.dumps(result, indent=1))
    table = markdown(mask_rows, fused_rows)
    (args.out_dir / f"kernels_{args.tag}.md").write_text(table + "\n")
    for r in result["mask_shapes"]:
        print(r)
    for line in best_configs(result.get("sweep", [])):
        print(line)
    print(table)


if __name__ == "__main__":
    main()
