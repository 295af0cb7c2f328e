"""End to end: generate with the embedded SmolLM2 under JSONSchemaBench schemas, validate with ``jsonschema``.

Schemas: every k-th line of each MaskBench/JSONSchemaBench subset (``../shared/data/maskbench/``), taken
round-robin over the subsets until ``--n`` schemas that we compile are collected (schemas we refuse are
counted and skipped). For each: one generation (chat template, the schema in the prompt, ancestral
sampling at temperature 1 with a fixed seed, ``--max-new-tokens``), compact output in the schema's
property order (the defaults). Every text that ends by EOS is parsed and validated with the
``jsonschema`` package (validator from ``$schema``, default 2020-12, with its format checker); texts that
hit the token limit are counted separately (a valid prefix, not a value).

    python benchmarks/bench_json_e2e.py --n 50 --verbose --max-new-tokens 160
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CONSTRAIN_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data" / "maskbench"
RESULTS = ROOT / "benchmarks" / "results"


def pick(n: int, stride: int) -> list[dict[str, Any]]:
    """Round-robin over the subsets, every ``stride``-th schema of each."""
    subsets = []
    for f in sorted(DATA.glob("*.jsonl")):
        with f.open() as fh:
            lines = [json.loads(x) for x in fh if x.strip()]
        subsets.append(lines[::stride])
    out: list[dict[str, Any]] = []
    k = 0
    while any(k < len(s) for s in subsets) and len(out) < 4 * n:
        out += [s[k] for s in subsets if k < len(s)]
        k += 1
    return out


def prompt_for(schema: Any) -> str:
    text = json.dumps(schema, ensure_ascii=False)
    if len(text) > 1500:
        text = text[:1500] + " ..."
    return f"Write one JSON value that is valid under this JSON Schema. Reply with the JSON only.\n\n{text}"


def validate(schema: Any, rec: dict[str, Any]) -> None:
    """Parse the text and validate it with ``jsonschema`` (skipped where that package is missing)."""
    try:
        import jsonschema
    except ImportError:
        return
    try:
        value = json.loads(rec["text"])
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = [e.message[:200] for e in cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value)]
        rec["valid"] = not errors
        rec["errors"] = errors[:3]
    except Exception as e:  # not JSON, or a schema jsonschema cannot handle: reported, never hidden
        rec["valid"] = False
        rec["errors"] = [f"{type(e).__name__}: {str(e)[:200]}"]


def tally(runs: list[dict[str, Any]]) -> dict[str, Any]:
    eos = [r for r in runs if r["eos"]]
    return {"schemas": len(runs), "ended_by_eos": len(eos), "validated_of_eos": sum("valid" in r for r in eos),
            "valid_of_eos": sum(bool(r.get("valid")) for r in eos), "hit_token_limit": len(runs) - len(eos)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--stride", type=int, default=37)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--cases", type=Path, help="take the cases from this JSON list instead of picking them")
    ap.add_argument("--dump-cases", type=Path, help="write the picked cases here and stop")
    ap.add_argument("--validate", type=Path, help="only (re)validate the texts of this results file")
    ap.add_argument("--out", type=Path, default=RESULTS / "json_e2e_smollm2.json")
    a = ap.parse_args()
    if a.dump_cases:
        a.dump_cases.write_text(json.dumps(pick(a.n, a.stride)))
        return
    if a.validate:
        summary = json.loads(a.validate.read_text())
        schemas = {c["id"]: c["schema"] for c in pick(a.n, a.stride)}
        for rec in summary["runs"]:
            if rec["eos"]:
                validate(schemas[rec["id"]], rec)
        summary.update(tally(summary["runs"]))
        a.validate.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
        print(json.dumps({k: v for k, v in summary.items() if k not in ("runs", "refused")}, indent=1))
        return

    import torch

    from constrain.errors import SchemaError
    from constrain.generation import default_compiler, default_model, generate_result

    torch.set_num_threads(1)
    model, tokenizer = default_model()
    compiler = default_compiler()
    runs: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    t_all = time.time()
    cases = json.loads(a.cases.read_text()) if a.cases else pick(a.n, a.stride)
    for case in cases:
        if len(runs) >= a.n:
            break
        schema = case["schema"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                constraint = compiler.json_schema(schema)
                compile_s = time.perf_counter() - t0
        except SchemaError as e:
            refused.append({"id": case["id"], "error": str(e)[:200]})
            continue
        t0 = time.perf_counter()
        steps: list[float] = []
        r = generate_result(prompt_for(schema), constraint, model, tokenizer, max_new_tokens=a.max_new_tokens,
                            seed=a.seed + len(runs), progress=lambda _t, s=steps: s.append(time.perf_counter()))
        if a.verbose and steps:
            print(f"    {len(steps)} steps, first after {steps[0] - t0:.1f} s, then "
                  f"{(steps[-1] - steps[0]) / max(1, len(steps) - 1) * 1e3:.0f} ms per token", flush=True)
        gen_s = time.perf_counter() - t0
        rec: dict[str, Any] = {"id": case["id"], "subset": case["subset"], "tokens": len(r.token_ids),
                               "eos": r.stopped_by_eos, "compile_s": round(compile_s, 3),
                               "generate_s": round(gen_s, 2), "text": r.text}
        if r.stopped_by_eos:
            validate(schema, rec)
        runs.append(rec)
        print(f"{len(runs):>3} {case['id']:<45} tokens {rec['tokens']:>4} eos {rec['eos']!s:<5} "
              f"valid {rec.get('valid', '-')!s:<5} {gen_s:6.1f} s", flush=True)
        write(a, runs, refused, t_all)
    summary = write(a, runs, refused, t_all)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("runs", "refused")}, indent=1))


def write(a: argparse.Namespace, runs: list[dict[str, Any]], refused: list[dict[str, str]],
          t_all: float) -> dict[str, Any]:
    """Write the results so far (the run is long on a CPU: partial results survive an interruption)."""
    summary = {
        "command": " ".join(["python", *sys.argv]), "model": "SmolLM2-135M-Instruct (embedded GGUF), CPU",
        **tally(runs), "refused_skipped": len(refused),
        "max_new_tokens": a.max_new_tokens, "complete": len(runs) >= a.n, "wall_s": round(time.time() - t_all, 1),
        "runs": runs, "refused": refused,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
