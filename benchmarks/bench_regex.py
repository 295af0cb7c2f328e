#!/usr/bin/env python3
"""Regex constraints side by side: constrain vs outlines-core vs xgrammar vs llguidance, in one run, on
the same regexes, tokenizers and token walks.

Regexes: the curated list of ``tests/regex_corpus.py``, XGrammar's regex test cases, Outlines' built-in
type regexes and Outlines' JSON-Schema-to-regex outputs (``../shared/data``). For each regex the texts
to walk are the data's matching strings plus strings drawn with hypothesis ``from_regex`` (seeded,
checked with ``re.fullmatch``); the texts to reject are the data's non-matching strings plus seeded
one-character mutations of accepted strings that ``re.fullmatch`` rejects. Every text is tokenized once
with the tokenizer's own encoder and every engine walks the same token ids.

Measured per engine (adapters of ``../shared/peerbench/peerbench.py``, one thread):
  * compile time, cold: a fresh compiler per regex; per-tokenizer vocabulary work (constrain's
    Vocabulary and trie, xgrammar's TokenizerInfo, outlines' Vocabulary, llguidance's tokenizer) is
    done once before timing, for every engine alike;
  * per-token mask time: fill the int32 allowed-token bitmask before each token, then advance (only
    the fill is timed). outlines-core writes its bitmask with ``Guide.write_mask_into``; its
    ``get_tokens`` list (what peerbench times) is reported as ``outlines-list``;
  * accepted texts (every token allowed and the end accepting) and rejected texts.
Each engine first compiles and walks one warm-up regex (JIT loading, lazy imports) that is not counted.

    python benchmarks/bench_regex.py --tokenizers llama3,smollm2 --out-dir benchmarks/results
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import re
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from _shared import DATA, ROOT, load_peerbench


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open() if line.strip()]


# ---------------------------------------------------------------- cases
def _curated() -> list[str]:
    """The curated regexes of tests/regex_corpus.py (read from the file, without importing the tests)."""
    src = (ROOT / "tests" / "regex_corpus.py").read_text()
    start = src.index("CURATED = [")
    end = src.index("\n]\n", start)
    import ast

    return list(ast.literal_eval(src[start + len("CURATED = ") : end + 2]))


def _fullmatch(rx: re.Pattern[str], s: str) -> bool:
    try:
        return rx.fullmatch(s) is not None
    except RecursionError:
        return False


def _sample(pattern: str, n: int, seed: int) -> list[str]:
    """Up to ``n`` distinct strings that ``re.fullmatch(pattern)`` accepts, drawn by hypothesis (seeded)."""
    if n <= 0:
        return []
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    rx = re.compile(pattern)
    out: list[str] = []

    def draw(alphabet: Any) -> None:
        @settings(max_examples=n * 4, database=None, derandomize=True, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.from_regex(rx, fullmatch=True, alphabet=alphabet))
        def collect(s: str) -> None:
            if len(out) < n and s not in out and len(s) <= 400 and _fullmatch(rx, s):
                out.append(s)

        with contextlib.suppress(Exception):  # hypothesis cannot draw from this regex/alphabet: fall back
            collect()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Printable ASCII first (engines disagree on whether \d, \w, \s are Unicode); the full range if
        # the regex needs other characters.
        draw(st.characters(min_codepoint=32, max_codepoint=126))
        if not out:
            draw(None)
    return out[:n]


def _mutations(pattern: str, accepted: list[str], n: int, seed: int) -> list[str]:
    """Up to ``n`` one-character edits of accepted strings that ``re.fullmatch`` rejects (seeded)."""
    rx = re.compile(pattern)
    rng = random.Random(seed)
    pool = "aZ09 -_.:,{}\"'()[]xé\n"
    out: list[str] = []
    for _ in range(n * 20):
        if len(out) >= n or not accepted:
            break
        s = rng.choice(accepted)
        op = rng.randrange(3)
        i = rng.randrange(len(s) + 1)
        if op == 0:
            t = s[:i] + rng.choice(pool) + s[i:]
        elif op == 1 and s:
            i = min(i, len(s) - 1)
            t = s[:i] + s[i + 1 :]
        else:
            i = min(i, len(s) - 1) if s else 0
            t = s[:i] + rng.choice(pool) + s[i + 1 :]
        if t and t not in out and not _fullmatch(rx, t):
            out.append(t)
    return out


def build_cases(samples: int, mutations: int, seed: int) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for i, rx in enumerate(_curated()):
        cases.append({"id": f"curated-{i:03d}", "source": "regex_corpus", "regex": rx, "accept": [], "reject": []})
    for c in _jsonl(DATA / "xgrammar-tests" / "regex.jsonl"):
        cases.append({"id": c["id"], "source": "xgrammar", "regex": c["grammar"], "accept": c["accept"],
                      "reject": c["reject"]})
    for c in _jsonl(DATA / "outlines-tests" / "regex_types.jsonl"):
        cases.append({"id": c["id"], "source": "outlines-types", "regex": c["regex"], "accept": c["match"],
                      "reject": c["no_match"]})
    for c in _jsonl(DATA / "outlines-tests" / "json_schema_to_regex.jsonl"):
        cases.append({"id": c["id"], "source": "outlines-json", "regex": c["regex"], "accept": c["match"],
                      "reject": c["no_match"]})
    seen: set[str] = set()
    out = []
    for k, c in enumerate(cases):
        if c["regex"] in seen:
            continue
        seen.add(c["regex"])
        try:
            rx = re.compile(c["regex"])
        except re.error:
            continue
        # Keep only labels Python's re agrees with (the reference for "accept" and "reject").
        c["accept"] = [s for s in c["accept"] if _fullmatch(rx, s)]
        c["reject"] = [s for s in c["reject"] if not _fullmatch(rx, s)]
        drawn = _sample(c["regex"], samples, seed + k)
        c["accept"] = list(dict.fromkeys(c["accept"] + drawn))
        c["reject"] = list(dict.fromkeys(c["reject"] + _mutations(c["regex"], c["accept"], mutations, seed + k)))
        out.append(c)
    return out


# ---------------------------------------------------------------- engines
def make_engines(pb: Any, names: list[str], tok: Any) -> dict[str, Any]:
    class OutlinesMask(pb.Outlines):  # type: ignore[misc,name-defined]
        """outlines-core filling the same int32 bitmask as the others (``Guide.write_mask_into``)."""

        name = "outlines"

        def walk(self, index: Any, ids: list[int]) -> tuple[bool, list[float]]:
            import torch

            g = self.Guide(index)
            words = (self.vocab_size + 31) // 32
            bm = torch.zeros(words, dtype=torch.int32)
            ptr, numel = bm.data_ptr(), bm.numel()
            times = []
            for i in ids:
                t = time.perf_counter()
                g.write_mask_into(ptr, numel, 4)
                times.append(time.perf_counter() - t)
                if not (int(bm[i >> 5]) >> (i & 31)) & 1:
                    return False, times
                g.advance(i)
            return bool(g.is_finished()), times

        def walk_list(self, index: Any, ids: list[int]) -> tuple[bool, list[float]]:
            """peerbench's walk: ``get_tokens`` (a Python list of allowed ids) per token."""
            return pb.Outlines.walk(self, index, ids)  # type: ignore[no-any-return]

    table = {"constrain": pb.Constrain, "outlines": OutlinesMask, "xgrammar": pb.XGrammar,
             "llguidance": pb.LLGuidance}
    engines: dict[str, Any] = {}
    for name in names:
        try:
            t = time.perf_counter()
            engines[name] = table[name](tok)
            print(f"# {name}: vocabulary preprocessing {time.perf_counter() - t:.2f} s (not counted)", file=sys.stderr)
        except Exception as e:  # an engine that cannot start is reported and skipped
            print(f"# {name}: unavailable ({type(e).__name__}: {e})", file=sys.stderr)
    return engines


# Regexes on which an engine takes the whole process down (a native abort, not an exception), so they
# cannot be run in the same process: counted as that engine's compile failures, with the reason.
ABORTS: dict[tuple[str, str], str] = {
    ("outlines", "outlines-regex-019"): "skipped: outlines-core 0.2.14 aborts the process (a 1.6 GB allocation "
    "fails under a 6 GB address-space limit on llama3; the run exhausts memory without one)",
}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def run_tokenizer(pb: Any, tok_name: str, names: list[str], cases: list[dict[str, Any]]) -> dict[str, Any]:
    tok = pb.load_tokenizer(tok_name)
    engines = make_engines(pb, names, tok)
    warm = {"regex": r"[a-z]+ \d{1,3}", "accept": ["warm up 12"]}
    warm_ids = tok.encode(warm["accept"][0], add_special_tokens=False)
    for e in engines.values():
        e.walk(e.compile("regex", warm), warm_ids)

    # outlines-list: the same compiled outlines index walked with get_tokens (its compile is outlines').
    names_out = list(engines) + (["outlines-list"] if "outlines" in engines else [])
    per_case: list[dict[str, Any]] = []
    res = {n: {"compile_ms": [], "token_us": [], "valid_ok": 0, "valid_n": 0, "invalid_rejected": 0,
               "invalid_n": 0, "errors": {}} for n in names_out}
    for ci, case in enumerate(cases):
        ok_ids = [tok.encode(s, add_special_tokens=False) for s in case["accept"]]
        bad_ids = [tok.encode(s, add_special_tokens=False) for s in case["reject"]]
        row: dict[str, Any] = {"id": case["id"], "source": case["source"], "regex": case["regex"],
                               "accept_n": len(ok_ids), "reject_n": len(bad_ids), "engines": {}}
        for name, e in engines.items():
            r = res[name]
            gc.collect()
            try:
                if (name, case["id"]) in ABORTS:
                    raise RuntimeError(ABORTS[name, case["id"]])
                t0 = time.perf_counter()
                compiled = e.compile("regex", case)
                ms = (time.perf_counter() - t0) * 1e3
            except Exception as ex:  # a regex an engine cannot compile is recorded
                err = f"{type(ex).__name__}: {str(ex)[:160]}"
                for n in [name, "outlines-list"] if name == "outlines" else [name]:
                    res[n]["errors"][case["id"]] = err
                    row["engines"][n] = {"error": err}
                continue
            r["compile_ms"].append(ms)
            acc = rej = 0
            tus: list[float] = []
            for ids in ok_ids:
                ok, ts = e.walk(compiled, ids)
                acc += ok
                tus.extend(x * 1e6 for x in ts)
            for ids in bad_ids:
                ok, _ = e.walk(compiled, ids)
                rej += not ok
            r["token_us"].extend(tus)
            r["valid_ok"] += acc
            r["valid_n"] += len(ok_ids)
            r["invalid_rejected"] += rej
            r["invalid_n"] += len(bad_ids)
            row["engines"][name] = {"compile_ms": ms, "accepted": acc, "rejected": rej,
                                    "token_us_p50": pct(tus, 50) if tus else None}
            if name == "outlines":
                tl: list[float] = []
                acc_l = 0
                for ids in ok_ids:
                    ok, ts = e.walk_list(compiled, ids)
                    acc_l += ok
                    tl.extend(x * 1e6 for x in ts)
                rl = res["outlines-list"]
                rl["compile_ms"].append(ms)
                rl["token_us"].extend(tl)
                rl["valid_ok"] += acc_l
                rl["valid_n"] += len(ok_ids)
                rl["invalid_rejected"] += rej
                rl["invalid_n"] += len(bad_ids)
                row["engines"]["outlines-list"] = {"compile_ms": ms, "accepted": acc_l, "rejected": rej,
                                                   "token_us_p50": pct(tl, 50) if tl else None}
            del compiled
        per_case.append(row)
        print(f"# {tok_name} {ci + 1}/{len(cases)} {case['id']}: " + " ".join(
            f"{n}={v['compile_ms']:.1f}ms" if "compile_ms" in v else f"{n}=ERR" for n, v in row["engines"].items()),
            file=sys.stderr, flush=True)

    # Compile medians over the regexes every engine compiled, so engines are compared on the same set.
    common = [row for row in per_case if all("compile_ms" in row["engines"].get(n, {}) for n in names_out)]
    summary: dict[str, Any] = {}
    for name, r in res.items():
        c, t = r["compile_ms"], r["token_us"]
        cc = [row["engines"][name]["compile_ms"] for row in common]
        summary[name] = {
            "compiled": len(c), "cases": len(cases),
            "compile_ms_p50": statistics.median(c) if c else None, "compile_ms_p95": pct(c, 95) if c else None,
            "common_compile_ms_p50": statistics.median(cc) if cc else None,
            "common_compile_ms_p95": pct(cc, 95) if cc else None,
            "token_us_mean": statistics.fmean(t) if t else None, "token_us_p50": pct(t, 50) if t else None,
            "token_us_p99": pct(t, 99) if t else None, "tokens": len(t),
            "valid_ok": r["valid_ok"], "valid_n": r["valid_n"],
            "invalid_rejected": r["invalid_rejected"], "invalid_n": r["invalid_n"], "errors": r["errors"],
        }
    # Per-regex compile ratio constrain / peer on the common set.
    if "constrain" in engines:
        for name in names_out:
            if name == "constrain" or not common:
                continue
            ratios = [row["engines"]["constrain"]["compile_ms"] / row["engines"][name]["compile_ms"] for row in common]
            summary[name]["constrain_over_engine_compile_median_ratio"] = statistics.median(ratios)
            summary[name]["regexes_constrain_compiles_slower"] = sum(x > 1 for x in ratios)
    return {"tokenizer": tok_name, "vocab": len(tok), "common_cases": len(common), "engines": summary,
            "per_case": per_case}


# ---------------------------------------------------------------- report
def markdown(results: list[dict[str, Any]], command: str) -> str:
    f = lambda v, d=1: "-" if v is None else f"{v:,.{d}f}"  # noqa: E731
    lines = [f"Command: `{command}`", ""]
    lines.append("| tokenizer | engine | compiled | compile p50 ms | compile p95 ms | compile p50 ms (common) "
                 "| mask mean µs | mask p50 µs | mask p99 µs | accepted | rejected | compile p50 vs constrain "
                 "| mask p50 vs constrain |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for res in results:
        eng = res["engines"]
        base = eng.get("constrain")
        for name, s in eng.items():
            rc = rm = "-"
            if base and s["common_compile_ms_p50"] and base["common_compile_ms_p50"]:
                rc = f"{s['common_compile_ms_p50'] / base['common_compile_ms_p50']:.2f}x"
            if base and s["token_us_p50"] and base["token_us_p50"]:
                rm = f"{s['token_us_p50'] / base['token_us_p50']:.2f}x"
            lines.append(
                f"| {res['tokenizer']} ({res['vocab']:,}) | {name} | {s['compiled']}/{s['cases']} "
                f"| {f(s['compile_ms_p50'], 2)} | {f(s['compile_ms_p95'], 2)} | {f(s['common_compile_ms_p50'], 2)} "
                f"| {f(s['token_us_mean'])} | {f(s['token_us_p50'])} | {f(s['token_us_p99'])} "
                f"| {s['valid_ok']}/{s['valid_n']} | {s['invalid_rejected']}/{s['invalid_n']} | {rc} | {rm} |")
    lines.append("")
    for res in results:
        lines.append(f"{res['tokenizer']}: {res['common_cases']} regexes compiled by every engine (the "
                     "'common' medians). Per-regex compile time, constrain / engine (median over the common set):")
        for name, s in res["engines"].items():
            if "constrain_over_engine_compile_median_ratio" in s:
                lines.append(f"- vs {name}: {s['constrain_over_engine_compile_median_ratio']:.2f} "
                             f"(constrain slower on {s['regexes_constrain_compiles_slower']} of {res['common_cases']})")
        lines.append("")
        for name, s in res["engines"].items():
            if s["errors"]:
                errs = "; ".join(f"{k}: {v[:90]}" for k, v in list(s["errors"].items())[:6])
                lines.append(f"- {name} failed to compile {len(s['errors'])}: {errs}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", default="llama3,smollm2")
    ap.add_argument("--engines", default="constrain,outlines,xgrammar,llguidance")
    ap.add_argument("--samples", type=int, default=8, help="hypothesis strings per regex (besides the data's)")
    ap.add_argument("--mutations", type=int, default=4, help="rejected one-character edits per regex")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=Path, help="reuse the regexes and texts of an earlier run's JSON output")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out-dir", type=Path)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    pb = load_peerbench()
    if a.cases:  # the exact texts of an earlier run (hypothesis draws can differ between processes)
        cases = json.loads(a.cases.read_text())["cases"]
    else:
        cases = build_cases(a.samples, a.mutations, a.seed)
    if a.limit:
        cases = cases[: a.limit]
    print(f"# {len(cases)} regexes, {sum(len(c['accept']) for c in cases)} accepted and "
          f"{sum(len(c['reject']) for c in cases)} rejected texts", file=sys.stderr)
    results = [run_tokenizer(pb, t, a.engines.split(","), cases) for t in a.tokenizers.split(",")]
    command = "python benchmarks/bench_regex.py " + " ".join(sys.argv[1:])
    md = markdown(results, command)
    print(md)
    if a.out_dir:
        a.out_dir.mkdir(parents=True, exist_ok=True)
        suffix = f"_{a.tag}" if a.tag else ""
        (a.out_dir / f"regex{suffix}.json").write_text(json.dumps(
            {"command": command, "cases": cases, "results": results}, indent=1, ensure_ascii=False))
        (a.out_dir / f"regex{suffix}.md").write_text(md + "\n")


if __name__ == "__main__":
    main()
