"""The ``constrain`` command line. Imports stay inside commands so ``constrain --help`` is instant."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="constrain", description="Constrained generation and constraint tools.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate text that satisfies a constraint")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--regex", help="a Python regular expression the whole output must match")
    src.add_argument("--schema", type=Path, help="a JSON Schema file the output must validate against")
    src.add_argument("--lark", type=Path, help="a Lark grammar file")
    src.add_argument("--gbnf", type=Path, help="a llama.cpp GBNF grammar file")
    g.add_argument("prompt", help="the prompt (the model's chat template is applied)")
    g.add_argument("--max-new-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=1.0, help="0 for greedy")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("-n", "--num", type=int, default=1, help="number of samples")
    g.add_argument(
        "--sampler", choices=("lcd", "awrs", "smc"), default="lcd",
        help="lcd: token masking (default); awrs: adaptive rejection, few checks per token (AWRS-SMC with "
        "--particles > 1); smc: sequential Monte Carlo, samples the model conditioned on the constraint",
    )
    g.add_argument("--particles", type=int, default=None, help="SMC particles (default 8 for --sampler smc)")
    g.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens (before the constraint)")
    g.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (before the constraint)")
    g.add_argument("--no-chat", action="store_true", help="do not apply the chat template")
    g.add_argument("--json", action="store_true", help="print one JSON object per sample")
    return p


def _load_constraint(args: argparse.Namespace, compiler: object) -> object:
    if args.regex is not None:
        return compiler.regex(args.regex)  # type: ignore[attr-defined]
    if args.schema is not None:
        return compiler.json_schema(json.loads(args.schema.read_text()))  # type: ignore[attr-defined]
    if args.lark is not None:
        return compiler.lark(args.lark.read_text())  # type: ignore[attr-defined]
    return compiler.gbnf(args.gbnf.read_text())  # type: ignore[attr-defined]


def _generate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    from constrain.generation import default_compiler, default_model, generate_result

    try:
        with console.status("compiling the constraint"):
            constraint = _load_constraint(args, default_compiler())
    except (ValueError, OSError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    with console.status("loading the model"):
        model, tokenizer = default_model()
    for k in range(args.num):
        seed = None if args.seed is None else args.seed + k
        with Progress(
            TextColumn("sample {task.fields[k]}"), BarColumn(), TextColumn("{task.completed} tokens"),
            TimeElapsedColumn(), console=console, transient=True,
        ) as bar:
            task = bar.add_task("gen", total=args.max_new_tokens, k=k + 1)
            try:
                result = generate_result(
                    args.prompt, constraint, model, tokenizer, max_new_tokens=args.max_new_tokens,
                    temperature=args.temperature, seed=seed, chat=not args.no_chat,
                    progress=lambda _tok, bar=bar, task=task: bar.advance(task),
                    sampler=args.sampler, particles=args.particles, top_k=args.top_k, top_p=args.top_p,
                )
            except (ValueError, RuntimeError) as e:
                console.print(f"[red]error:[/red] {e}")
                return 2
        if args.json:
            record = {"text": result.text, "tokens": len(result.token_ids), "eos": result.stopped_by_eos}
            if result.log_ml is not None:
                record["log_ml"] = result.log_ml
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(result.text)
            if not result.stopped_by_eos:
                console.print(f"[yellow]warning:[/yellow] stopped at --max-new-tokens={args.max_new_tokens}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
