"""JSON Schema evaluation: MaskBench / JSONSchemaBench side by side with peers, and the JSON Schema Test Suite.

Two commands (write results to ``benchmarks/results/json_*``):

``maskbench``: for every subset of ``../shared/data/maskbench/`` and every engine (this project, xgrammar,
llguidance through ``../shared/peerbench/peerbench.py``'s adapters, so that every engine is measured the same
way): schemas compiled, valid instances accepted, invalid instances rejected (token by token, the text
tokenised once and walked by every engine), compile time (cold compiler per schema, one thread) and
per-token mask time (fill the bitmask, then advance). Before the first schema each engine compiles and
walks one small schema untimed, so one-time process costs are charged to no schema. Instances are
serialised compactly in their own key order, as MaskBench prescribes.

``suite``: the official JSON Schema Test Suite (draft 2020-12 and draft 7, required and optional): for each
file, the groups (schemas) we compile, and for those, valid instances accepted and invalid ones rejected,
token by token through ``Compiler.json_schema(schema, any_order=True)`` (JSON values have no key order, so
the order-free form is the one that matches the suite's semantics). ``--reference`` checks at the string
level with the reference recogniser of ``tests/test_json_schema_support.py`` instead (no tokenizer).

Examples::

    python benchmarks/bench_json_schema.py maskbench --tokenizer llama3 --engines constrain,xgrammar,llguidance
    python benchmarks/bench_json_schema.py maskbench --stride 10 --subsets Github_easy,Kubernetes
    python benchmarks/bench_json_schema.py suite --tokenizer llama3
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import time
import warnings
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from _shared import DATA, RESULTS, ROOT, load_peerbench


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


# ---------------------------------------------------------------- MaskBench
def maskbench(a: argparse.Namespace) -> None:
    pb = load_peerbench()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    tok = pb.load_tokenizer(a.tokenizer)
    engines = []
    for name in a.engines.split(","):
        try:
            engines.append(pb.ENGINES[name](tok))
        except Exception as e:
            print(f"# {name}: unavailable ({type(e).__name__}: {e})", file=sys.stderr)
    # one-time process costs (numba code loaded from its cache, native libraries, per-tokenizer tables) are
    # charged to no schema: every engine first compiles and walks a small schema, untimed
    props = {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "array", "items": {"type": "number"}}}
    warm = {"id": "warm-up", "schema": {"type": "object", "properties": props},
            "valid": [{"a": "x", "b": 1, "c": [1.5]}], "invalid": []}
    for e in engines:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = e.compile("json", warm)
        for text in pb.texts("json", warm, "valid"):
            e.walk(compiled, tok.encode(text, add_special_tokens=False))
    files = sorted(glob.glob(str(DATA / "maskbench" / "*.jsonl")))
    if a.subsets:
        keep = set(a.subsets.split(","))
        files = [f for f in files if Path(f).stem in keep]
    per: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, list[dict[str, Any]]] = {e.name: [] for e in engines}
    for f in files:
        subset = Path(f).stem
        with open(f) as fh:
            cases = [json.loads(line) for line in fh if line.strip()]
        cases = cases[a.offset :: a.stride]
        if a.limit:
            cases = cases[: a.limit]
        per[subset] = {e.name: {"schemas": 0, "compiled": 0, "compile_ms": [], "compiled_ids": [], "token_us": [],
                                "valid_ok": 0,
                                "valid_n": 0, "invalid_rejected": 0, "invalid_n": 0, "errors": Counter()}
                       for e in engines}
        t_subset = time.time()
        for case in cases:
            ok_ids = [tok.encode(t, add_special_tokens=False) for t in pb.texts("json", case, "valid")]
            bad_ids = [tok.encode(t, add_special_tokens=False) for t in pb.texts("json", case, "invalid")]
            for e in engines:
                r = per[subset][e.name]
                r["schemas"] += 1
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.perf_counter()
                        compiled = e.compile("json", case)
                        r["compile_ms"].append((time.perf_counter() - t0) * 1e3)
                        r["compiled_ids"].append(case["id"])
                except Exception as ex:
                    r["errors"][f"{type(ex).__name__}: {str(ex)[:70]}"] += 1
                    continue
                r["compiled"] += 1
                for k, ids in enumerate(ok_ids):
                    ok, ts = e.walk(compiled, ids)
                    r["valid_n"] += 1
                    r["valid_ok"] += ok
                    r["token_us"].extend(x * 1e6 for x in ts)
                    if not ok:
                        failures[e.name].append({"id": case["id"], "kind": "valid_rejected", "index": k})
                for k, ids in enumerate(bad_ids):
                    ok, _ = e.walk(compiled, ids)
                    r["invalid_n"] += 1
                    r["invalid_rejected"] += not ok
                    if ok:
                        failures[e.name].append({"id": case["id"], "kind": "invalid_accepted", "index": k})
        print(f"# {subset}: {len(cases)} schemas in {time.time() - t_subset:.0f} s", file=sys.stderr)
        _print_subset(subset, per[subset])
        md = _write(per, failures, a, len(tok))  # after every subset: partial results survive
    print(md)


def _write(per: dict[str, dict[str, dict[str, Any]]], failures: dict[str, list[dict[str, Any]]],
           a: argparse.Namespace, vocab: int) -> str:
    summary = _summarise(per, a, vocab)
    summary["failures"] = failures
    out = Path(a.out or RESULTS / f"json_maskbench_{a.tokenizer}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, default=list))
    md = _markdown(summary)
    out.with_suffix(".md").write_text(md)
    if a.raw:  # per-token and per-compile times, for `merge`
        a.raw.write_text(json.dumps({"per": per, "failures": failures, "vocab": vocab,
                                     "command": summary["command"]}, default=dict))
    return md


def merge(a: argparse.Namespace) -> None:
    """Combine the --raw files of runs over disjoint subsets (run in parallel) into one result."""
    per: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, list[dict[str, Any]]] = {}
    vocab = 0
    a.commands = []
    for f in a.inputs:
        d = json.loads(Path(f).read_text())
        a.commands.append(d["command"])
        for subset, res in d["per"].items():
            for r in res.values():
                r["errors"] = Counter(r["errors"])
            per[subset] = res
        for name, xs in d["failures"].items():
            failures.setdefault(name, []).extend(xs)
        vocab = d["vocab"]
    per = dict(sorted(per.items()))
    print(_write(per, failures, a, vocab))


def _print_subset(subset: str, res: dict[str, dict[str, Any]]) -> None:
    for name, r in res.items():
        print(f"{subset:<22} {name:<11} compiled {r['compiled']:>4}/{r['schemas']:<4} valid {r['valid_ok']:>5}/"
              f"{r['valid_n']:<5} invalid rejected {r['invalid_rejected']:>5}/{r['invalid_n']:<5}", flush=True)


def _summarise(per: dict[str, dict[str, dict[str, Any]]], a: argparse.Namespace, vocab: int) -> dict[str, Any]:
    engines = list(next(iter(per.values())).keys()) if per else []
    subsets = {}
    totals: dict[str, dict[str, Any]] = {}
    for subset, res in per.items():
        subsets[subset] = {}
        for name, r in res.items():
            subsets[subset][name] = {k: r[k] for k in ("schemas", "compiled", "valid_ok", "valid_n",
                                                      "invalid_rejected", "invalid_n")}
            subsets[subset][name]["errors"] = dict(r["errors"].most_common(8))
            t = totals.setdefault(name, {"schemas": 0, "compiled": 0, "valid_ok": 0, "valid_n": 0,
                                         "invalid_rejected": 0, "invalid_n": 0, "compile_ms": [], "token_us": []})
            for k in ("schemas", "compiled", "valid_ok", "valid_n", "invalid_rejected", "invalid_n"):
                t[k] += r[k]
            t["compile_ms"] += r["compile_ms"]
            t["token_us"] += r["token_us"]
            # (raw files of runs before the ids were kept have none: no common-set median then)
            times_by_id = t.setdefault("times_by_id", {})
            times_by_id.update(zip(r.get("compiled_ids", ()), r["compile_ms"]))
    # the compile median over the schemas every engine compiled: an engine that compiles more schemas,
    # larger ones among them, is not charged for those in this figure
    common = set.intersection(*(set(totals[n]["times_by_id"]) for n in engines)) if engines else set()
    perf = {}
    for name in engines:
        t = totals[name]
        c, u, by_id = t.pop("compile_ms"), t.pop("token_us"), t.pop("times_by_id")
        on_common = [by_id[i] for i in common]
        perf[name] = {
            "compile_ms_p50_common": statistics.median(on_common) if on_common else None,
            "common_compiles": len(on_common),
            "compile_ms_p50": statistics.median(c) if c else None, "compile_ms_p95": _pct(c, 95),
            "token_us_mean": statistics.fmean(u) if u else None, "token_us_p50": _pct(u, 50),
            "token_us_p99": _pct(u, 99), "tokens": len(u), "compiles": len(c),
        }
    return {"tokenizer": a.tokenizer, "vocab": vocab, "stride": a.stride, "offset": a.offset,
            "engines": engines, "subsets": subsets, "totals": totals, "performance": perf,
            "command": " + ".join(getattr(a, "commands", None) or [" ".join(sys.argv)])}


def _markdown(s: dict[str, Any]) -> str:
    engines = s["engines"]
    which = (f"every {s['stride']}th schema (offset {s['offset']})" if s["stride"]
             else "schemas as the commands select them")
    lines = [f"MaskBench, tokenizer {s['tokenizer']} (vocab {s['vocab']}), {which}. Command: `{s['command']}`", ""]
    head = "| subset | " + " | ".join(f"{e} compiled | {e} valid ok | {e} invalid rej." for e in engines) + " |"
    lines += [head, "|" + "---|" * (1 + 3 * len(engines))]
    rows = [*s["subsets"].items(), ("**total**", s["totals"])]
    for subset, res in rows:
        cells = []
        for e in engines:
            r = res[e]
            cells += [f"{r['compiled']}/{r['schemas']}", f"{r['valid_ok']}/{r['valid_n']}",
                      f"{r['invalid_rejected']}/{r['invalid_n']}"]
        lines.append(f"| {subset} | " + " | ".join(cells) + " |")
    lines += ["", "| engine | compile p50 ms | compile p95 ms | compile p50 ms, schemas all compiled | token mean µs | "
              "token p50 µs | token p99 µs | tokens |", "|---|---|---|---|---|---|---|---|"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}" if v < 10 else f"{v:.0f}"

    for e in engines:
        p = s["performance"][e]
        common = f"{f(p.get('compile_ms_p50_common'))} ({p.get('common_compiles', 0)})"
        lines.append(f"| {e} | {f(p['compile_ms_p50'])} | {f(p['compile_ms_p95'])} | {common} | "
                     f"{f(p['token_us_mean'])} | {f(p['token_us_p50'])} | {f(p['token_us_p99'])} | {p['tokens']} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- JSON Schema Test Suite
class _Raw(str):
    """A JSON number kept as its source text."""


def _loads_raw(text: str) -> Any:
    return json.loads(text, parse_float=_Raw, parse_int=_Raw)


def _dumps(v: Any) -> str:
    if isinstance(v, _Raw):
        return str(v)
    if isinstance(v, list):
        return "[" + ",".join(_dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dumps(x) for k, x in v.items()) + "}"
    return json.dumps(v, ensure_ascii=False)


def suite(a: argparse.Namespace) -> None:
    from constrain.errors import SchemaError
    from constrain.json_schema import schema_to_grammar

    base = DATA / "json-schema-test-suite"
    resources = {}
    for f in glob.glob(str(base / "remotes" / "**" / "*.json"), recursive=True):
        rel = os.path.relpath(f, base / "remotes")
        resources["http://localhost:1234/" + rel] = json.loads(Path(f).read_text(), parse_float=Decimal)
    compiler = None
    recognizer = None
    if a.reference:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_json_schema_support import Recognizer

        recognizer = Recognizer
    else:
        import constrain

        pb = load_peerbench()
        compiler = constrain.Compiler(pb.load_tokenizer(a.tokenizer))
    report: dict[str, Any] = {"mode": "reference recogniser" if a.reference else f"token level, {a.tokenizer}",
                              "options": {"any_order": True, "assert_format": "yes, except draft2020-12/format.json"},
                              "drafts": {}}
    for draft, num in (("draft2020-12", 2020), ("draft7", 7)):
        files = sorted(glob.glob(str(base / draft / "*.json")))
        files += sorted(glob.glob(str(base / draft / "optional" / "**" / "*.json"), recursive=True))
        rows = []
        for f in files:
            name = os.path.relpath(f, base / draft)
            text = Path(f).read_text()
            groups_schema = json.loads(text, parse_float=Decimal)
            groups_data = _loads_raw(text)
            row: dict[str, Any] = {"file": name, "groups": 0, "compiled": 0, "valid_ok": 0, "valid_n": 0,
                                   "invalid_rejected": 0, "invalid_n": 0, "all_right": 0, "wrong": [], "refused": []}
            for gs, gd in zip(groups_schema, groups_data):
                row["groups"] += 1
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        # formats are annotations in draft2020-12/format.json (the default there);
                        # everywhere else (optional/format/ included) they are asserted, our default
                        g = schema_to_grammar(gs["schema"], any_order=True, resources=resources, draft=num,
                                              assert_format=name != "format.json" or num != 2020)
                        check = (recognizer(g).accepts if recognizer else _token_checker(compiler, g))
                except SchemaError as e:
                    row["refused"].append(f"{gd['description']}: {e}")
                    continue
                row["compiled"] += 1
                right = True
                for t in gd["tests"]:
                    got = check(_dumps(t["data"]))
                    if t["valid"]:
                        row["valid_n"] += 1
                        row["valid_ok"] += got
                    else:
                        row["invalid_n"] += 1
                        row["invalid_rejected"] += not got
                    if got != t["valid"]:
                        right = False
                        row["wrong"].append(f"{gd['description']} / {t['description']} (valid={t['valid']})")
                row["all_right"] += right
            rows.append(row)
            print(f"{draft} {name:<45} compiled {row['compiled']:>3}/{row['groups']:<3} valid {row['valid_ok']}/"
                  f"{row['valid_n']} invalid rejected {row['invalid_rejected']}/{row['invalid_n']}", flush=True)
        report["drafts"][draft] = rows
    out = Path(a.out or RESULTS / ("json_test_suite_reference.json" if a.reference else "json_test_suite.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    md = _suite_markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md)


def _token_checker(compiler: Any, grammar: Any) -> Any:
    """Accepts(text) by walking the tokenizer's encoding of ``text`` token by token (mask and advance agree)."""
    from constrain.bitmask import allocate_bitmask

    compiled = compiler.grammar(grammar, kind="json_schema")
    tok = compiler.tokenizer

    def accepts(text: str) -> bool:
        m = compiled.matcher()
        bm = allocate_bitmask(1, compiled.vocab_size)
        for t in tok.encode(text, add_special_tokens=False):
            m.fill_bitmask(bm, 0)
            allowed = bool((int(bm[0, t >> 5]) >> (t & 31)) & 1)
            ok = m.advance(t)
            if allowed != ok:
                raise AssertionError(f"mask and advance disagree on token {t} in {text!r}")
            if not ok:
                return False
        return bool(m.accepting)

    return accepts


def _suite_markdown(r: dict[str, Any]) -> str:
    lines = [f"JSON Schema Test Suite ({r['mode']}, options {r['options']}). A group is one schema; "
             "*compiled* groups are the ones we accept, and only their instances are counted.", ""]
    for draft, rows in r["drafts"].items():
        lines += [f"### {draft}", "", "| file | groups compiled | all right | valid accepted | invalid rejected |",
                  "|---|---|---|---|---|"]
        tot = Counter()
        for row in rows:
            lines.append(f"| {row['file']} | {row['compiled']}/{row['groups']} | {row['all_right']} | "
                         f"{row['valid_ok']}/{row['valid_n']} | {row['invalid_rejected']}/{row['invalid_n']} |")
            for k in ("groups", "compiled", "all_right", "valid_ok", "valid_n", "invalid_rejected", "invalid_n"):
                tot[k] += row[k]
        lines.append(f"| **total** | {tot['compiled']}/{tot['groups']} | {tot['all_right']} | "
                     f"{tot['valid_ok']}/{tot['valid_n']} | {tot['invalid_rejected']}/{tot['invalid_n']} |")
        wrong = [(row["file"], w) for row in rows for w in row["wrong"]]
        if wrong:
            lines += ["", "Instances we get wrong in compiled groups:", ""]
            lines += [f"- {f}: {w}" for f, w in wrong]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("maskbench")
    m.add_argument("--tokenizer", default="llama3")
    m.add_argument("--engines", default="constrain,xgrammar,llguidance")
    m.add_argument("--subsets", default="")
    m.add_argument("--stride", type=int, default=1, help="take every n-th schema of each subset")
    m.add_argument("--offset", type=int, default=0)
    m.add_argument("--limit", type=int, default=0)
    m.add_argument("--out", type=Path)
    m.add_argument("--raw", type=Path, help="also write raw timings here (for merge)")
    g = sub.add_parser("merge", help="combine the --raw files of parallel maskbench runs")
    g.add_argument("inputs", nargs="+")
    g.add_argument("--tokenizer", default="llama3")
    g.add_argument("--stride", type=int, default=0, help="0: mixed (as the merged commands say)")
    g.add_argument("--offset", type=int, default=0)
    g.add_argument("--out", type=Path)
    g.add_argument("--raw", type=Path)
    s = sub.add_parser("suite")
    s.add_argument("--tokenizer", default="llama3")
    s.add_argument("--reference", action="store_true", help="string-level reference recogniser, no tokenizer")
    s.add_argument("--out", type=Path)
    a = ap.parse_args()
    {"maskbench": maskbench, "merge": merge, "suite": suite}[a.cmd](a)


if __name__ == "__main__":
    main()
