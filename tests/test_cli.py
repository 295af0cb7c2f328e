"""The console command: fast help (no heavy imports), clear errors, a real generation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# the console script installed beside this interpreter (the venv's bin/), not whatever PATH finds first
CONSTRAIN = str(Path(sys.executable).with_name("constrain"))


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from constrain import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: cli.main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'numba', 'lark') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_help() -> None:
    out = subprocess.run([CONSTRAIN, "--help"], capture_output=True, text=True, check=True)
    assert "generate" in out.stdout


@pytest.mark.slow
def test_generate_regex_command() -> None:
    pattern = r"(yes|no)"
    out = subprocess.run(
        [CONSTRAIN, "generate", "--regex", pattern, "--seed", "3", "-n", "2", "--json", "Is the sky blue?"],
        capture_output=True, text=True, check=True,
    )
    lines = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
    assert len(lines) == 2 and all(r["text"] in ("yes", "no") and r["eos"] for r in lines)


def test_bad_regex_is_a_clear_error() -> None:
    out = subprocess.run(
        [CONSTRAIN, "generate", "--regex", "(a)\\1", "hi"], capture_output=True, text=True,
    )
    assert out.returncode == 2 and "references" in out.stderr.lower()
