"""``generate(..., sampler=..., particles=...)`` and the CLI flags, with the embedded model (short, slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import constrain
from constrain.generation import generate_result

# the console script beside this interpreter (the venv's bin/), not whatever PATH finds first
CONSTRAIN = str(Path(sys.executable).with_name("constrain"))


@pytest.mark.slow
def test_generate_with_every_sampler() -> None:
    prompt = "Is the sky blue? Answer yes or no."
    for sampler, particles in [("lcd", None), ("awrs", None), ("smc", 3), ("awrs", 2)]:
        r = generate_result(prompt, "(yes|no)", sampler=sampler, particles=particles, seed=0, max_new_tokens=4)
        assert r.text in ("yes", "no") and r.stopped_by_eos and r.sampler == sampler
        assert len(r.log_z) >= 1 and all(z <= 1e-6 for z in r.log_z)
        if particles:
            assert len(r.particles) == particles and r.log_ml is not None and math.isfinite(r.log_ml)
            assert any(p.token_ids == r.token_ids for p in r.particles)
        else:
            assert r.log_ml is None and not r.particles
        assert (r.checks > 0) == (sampler == "awrs")


@pytest.mark.slow
def test_generate_with_a_predicate_and_top_k() -> None:
    def short_no_e(text: str) -> bool:
        return len(text) <= 10 and "e" not in text.lower()

    r = generate_result("Name a colour.", short_no_e, sampler="awrs", particles=2, seed=1, max_new_tokens=6,
                        top_k=50)
    assert "e" not in r.text.lower() and r.checks > 0  # the text may end inside a character: no length check
    text = constrain.generate("Name a colour.", "(red|blue|green)", sampler="smc", particles=2, seed=2,
                              max_new_tokens=4)
    assert text in ("red", "blue", "green")
    with pytest.raises(ValueError, match="one sequence"):
        generate_result("x", "(a|b)", sampler="lcd", particles=2)


@pytest.mark.slow
def test_cli_sampler_flags() -> None:
    out = subprocess.run(
        [CONSTRAIN, "generate", "--regex", "(yes|no)", "--sampler", "smc", "--particles", "2", "--seed", "1",
         "--json", "Is the sky blue?"],
        capture_output=True, text=True, check=True,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["text"] in ("yes", "no") and record["eos"] and math.isfinite(record["log_ml"])


def test_cli_rejects_an_unknown_sampler() -> None:
    out = subprocess.run(
        [CONSTRAIN, "generate", "--regex", "a", "--sampler", "beam", "hi"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "invalid choice" in out.stderr
