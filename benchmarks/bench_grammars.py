#!/usr/bin/env python3
"""Grammar constraints side by side: constrain vs xgrammar vs llguidance on the same grammars,
tokenizer and token walks.

For each grammar (GBNF or Lark file) we draw random strings with constrain's grammar sampler (seeded;
the same strings for every engine), tokenize them with the tokenizer's own encoder, and walk each
engine through the same token ids: fill the allowed-token bitmask, then advance. Reported per engine:
compile time (a fresh compiler per grammar, one thread), per-token mask time (mean, p50, p99), and
how many walks were accepted. The engine adapters are those of ``../shared/peerbench/peerbench.py``;
GBNF reaches llguidance through its own ``gbnf_to_lark`` and Lark reaches xgrammar through
``Grammar.from_lark``.

    python benchmarks/bench_grammars.py --tokenizer smollm2 --samples 20 --out benchmarks/results/grammars_smollm2.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from _shared import DATA, ROOT, freeze_heap, load_peerbench


def default_grammars() -> list[tuple[str, str, Path]]:
    """(name, kind, path) of the GBNF and Lark grammars in ../shared/data and our library."""
    out = []
    for p in sorted((DATA / "gbnf").glob("*.gbnf")):
        out.append((f"gbnf/{p.stem}", "gbnf", p))
    for p in sorted((DATA / "grammars" / "transformers-cfg").rglob("*.ebnf")):
        out.append((f"tcfg/{p.stem}", "gbnf", p))
    for p in sorted((DATA / "grammars" / "syncode").glob("*.lark")):
        out.append((f"syncode/{p.stem}", "lark", p))
    lib = ROOT / "grammars"
    for p in sorted(lib.glob("*.lark")):
        out.append((f"library/{p.stem}", "lark", p))
    return out


_WARMUP_GBNF = r"""root ::= value
value ::= "[" ws (value ("," ws value)*)? "]" | "{" ws (str ":" ws value ("," ws str ":" ws value)*)? "}" | str | num
str ::= "\"" [a-z ]* "\""
num ::= [0-9]+ ("." [0-9]+)?
ws ::= " "?
"""
_WARMUP_LARK = r"""start: value
?value: "[" [value ("," value)*] "]" | "{" [pair ("," pair)*] "}" | STR | NUM
pair: STR ":" value
STR: /"[a-z ]*"/
NUM: /[0-9]+(\.[0-9]+)?/
%ignore " "
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default="smollm2")
    ap.add_argument("--engines", default="constrain,xgrammar,llguidance")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--only", default="", help="comma-separated substrings of grammar names to keep")
    ap.add_argument("--skip", default="", help="comma-separated substrings of grammar names to leave out")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--freeze-gc", action="store_true",
                    help="gc.freeze() the heap after warm-up, as serving processes do (see _shared.freeze_heap)")
    a = ap.parse_args()

    pb = load_peerbench()
    import constrain
    from constrain.gbnf import gbnf_to_grammar
    from constrain.grammar_sampler import sample_strings
    from constrain.lark_frontend import lark_to_grammar

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    tok = constrain.load_default_tokenizer() if a.tokenizer == "smollm2" else pb.load_tokenizer(a.tokenizer)

    class XGrammar(pb.XGrammar):  # type: ignore[name-defined,misc]
        def compile(self, kind, case):  # type: ignore[no-untyped-def]
            if kind == "lark":
                comp = self.xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
                return comp.compile_grammar(self.xgr.Grammar.from_lark(case["lark"]))
            return super().compile(kind, case)

    class LLGuidance(pb.LLGuidance):  # type: ignore[name-defined,misc]
        def compile(self, kind, case):  # type: ignore[no-untyped-def]
            if kind == "gbnf":
                from llguidance.gbnf_to_lark import gbnf_to_lark

                return super().compile("lark", {"lark": gbnf_to_lark(case["gbnf"])})
            return super().compile(kind, case)

    factories = {"constrain": pb.Constrain, "xgrammar": XGrammar, "llguidance": LLGuidance}
    engines = []
    for name in a.engines.split(","):
        try:
            engines.append(factories[name](tok))
        except Exception as e:
            print(f"# {name}: unavailable ({type(e).__name__}: {e})", file=sys.stderr)

    # one-time process costs (numba code loaded from its cache, per-tokenizer tables) are not any grammar's
    for e in engines:
        for wkind, wcase in (("gbnf", {"gbnf": _WARMUP_GBNF}), ("lark", {"lark": _WARMUP_LARK})):
            try:
                e.walk(e.compile(wkind, wcase), tok.encode('[1, "a b", {"c": 2.5}]', add_special_tokens=False))
            except Exception as ex:
                print(f"# {e.name}: warm-up failed ({type(ex).__name__}: {ex})", file=sys.stderr)

    vocab = constrain.Compiler(tok).vocab
    if a.freeze_gc:
        freeze_heap()
    rows = []
    totals: dict[str, list[float]] = {e.name: [] for e in engines}
    # the same token sequences for every engine: grammars where each engine accepted each walk
    same_walks: dict[str, list[float]] = {e.name: [] for e in engines}
    for gname, kind, path in default_grammars():
        if a.only and not any(k in gname for k in a.only.split(",")):
            continue
        if a.skip and any(k in gname for k in a.skip.split(",")):
            continue
        text = path.read_text()
        try:
            ir = gbnf_to_grammar(text) if kind == "gbnf" else lark_to_grammar(text, import_paths=[str(path.parent)])
            strings = sample_strings(ir, a.samples, seed=0, byte_alphabet=vocab.byte_alphabet)
        except Exception as e:
            rows.append({"grammar": gname, "error": f"{type(e).__name__}: {str(e)[:100]}"})
            continue
        walks = [tok.encode(s, add_special_tokens=False) for s in strings]
        row: dict[str, object] = {"grammar": gname, "kind": kind, "tokens": sum(len(w) for w in walks)}
        timed: dict[str, list[float]] = {}
        for e in engines:
            case = {kind: text}
            try:
                t0 = time.perf_counter()
                compiled = e.compile(kind, case)
                compile_ms = (time.perf_counter() - t0) * 1e3
            except Exception as ex:
                row[e.name] = {"error": f"{type(ex).__name__}: {str(ex)[:100]}"}
                continue
            times: list[float] = []
            ok = 0
            for w in walks:
                accepted, ts = e.walk(compiled, w)
                ok += accepted
                times.extend(x * 1e6 for x in ts)
            totals[e.name].extend(times)
            if ok == len(walks):
                timed[e.name] = times
            row[e.name] = {
                "compile_ms": compile_ms, "accepted": ok, "walks": len(walks),
                "us_mean": statistics.fmean(times) if times else None,
                "us_p50": pb.pct(times, 50) if times else None, "us_p99": pb.pct(times, 99) if times else None,
            }
        rows.append(row)
        if len(timed) == len(engines):
            row["same_walks"] = True
            for name, times in timed.items():
                same_walks[name].extend(times)
        print(_fmt_row(row, [e.name for e in engines]), flush=True)
    summary = {name: _stats(t, pb.pct) for name, t in totals.items()}
    summary_same = {name: _stats(t, pb.pct) for name, t in same_walks.items()}
    n_same = sum(1 for r in rows if r.get("same_walks"))
    for title, summ in (("overall", summary),
                        (f"on the {n_same} grammars every engine accepted every walk of,", summary_same)):
        print(f"\n{title} per-token mask time (µs):")
        for name, s in summ.items():
            print(f"  {name:<11} mean {s['us_mean'] or float('nan'):8.1f}  p50 {s['us_p50'] or float('nan'):8.1f}  "
                  f"p99 {s['us_p99'] or float('nan'):8.1f}  over {s['tokens']} tokens")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"tokenizer": a.tokenizer, "samples": a.samples, "freeze_gc": a.freeze_gc,
                                     "rows": rows,
                                     "summary": summary, "summary_same_walks": summary_same,
                                     "same_walks_grammars": n_same}, indent=1))
        a.out.with_suffix(".md").write_text(_markdown(a.tokenizer, a.samples, rows, summary, summary_same, n_same,
                                                      [e.name for e in engines], a.freeze_gc))


def _stats(t: list[float], pct: Any) -> dict[str, float | int | None]:
    return {"us_mean": statistics.fmean(t) if t else None, "us_p50": pct(t, 50) if t else None,
            "us_p99": pct(t, 99) if t else None, "tokens": len(t)}


def _markdown(tokenizer: str, samples: int, rows: list[dict], summary: dict,  # type: ignore[type-arg]
              summary_same: dict, n_same: int, names: list[str], freeze_gc: bool = False) -> str:  # type: ignore[type-arg]
    """The results as markdown tables: the overall lines, then one row per grammar."""
    out = [f"Tokenizer `{tokenizer}`, {samples} sampled strings per grammar; per-token mask time in µs. "
           "*all walks*: every token each engine timed (an engine that rejects a walk stops timing it there); "
           f"*same walks*: the {n_same} grammars on which every engine accepted every walk, so every engine "
           "timed the same tokens." + (" Heap frozen after warm-up (``--freeze-gc``)." if freeze_gc else ""), "",
           "| engine | walks | tokens | mean | p50 | p99 |", "|---|---|---:|---:|---:|---:|"]
    for label, summ in (("all", summary), ("same", summary_same)):
        for n in names:
            m = summ[n]
            out.append(f"| {n} | {label} | {m['tokens']} | {_num(m['us_mean'])} | {_num(m['us_p50'])} | "
                       f"{_num(m['us_p99'])} |")
    head = " | ".join(f"{n} compile ms | {n} mean / p50 / p99 µs | {n} ok" for n in names)
    out += ["", f"| grammar | tokens | {head} |", "|---|---:|" + "---:|---|---:|" * len(names)]
    for r in rows:
        if "error" in r:
            err = r["error"][:60].replace("|", "/")
            out.append(f"| {r['grammar']} | - | sampling failed: {err} |" + " |" * (3 * len(names) - 1))
            continue
        cells = []
        for n in names:
            e = r.get(n)
            if not isinstance(e, dict):
                cells.append("- | - | -")
            elif "error" in e:
                cells.append(f"error: {e['error'][:50].replace('|', '/')} | | ")
            else:
                cells.append(f"{e['compile_ms']:.1f} | {_num(e['us_mean'])} / {_num(e['us_p50'])} / "
                             f"{_num(e['us_p99'])} | {e['accepted']}/{e['walks']}")
        out.append(f"| {r['grammar']} | {r['tokens']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _fmt_row(row: dict, names: list[str]) -> str:  # type: ignore[type-arg]
    parts = [f"{row['grammar']:<28}"]
    for n in names:
        r = row.get(n)
        if not isinstance(r, dict):
            parts.append(f"{n}: -")
        elif "error" in r:
            parts.append(f"{n}: ERR {r['error'][:40]}")
        else:
            parts.append(f"{n}: {r['compile_ms']:7.1f}ms {r['us_mean']:7.1f}/{r['us_p50']:6.1f}/{r['us_p99']:7.1f}µs "
                         f"{r['accepted']}/{r['walks']}")
    return " | ".join(parts)


if __name__ == "__main__":
    main()
