#!/usr/bin/env bash
# Set up (see setup.sh) and run the whole check: ruff, mypy on the installed package, pytest against
# the installed copy. Extra arguments go to pytest (e.g. -m "not slow", -k regex).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh --test
export CONSTRAIN_CACHE_DIR=$ROOT/.cache/constrain HF_HOME=$ROOT/.cache/hf HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export CONSTRAIN_TOKENIZERS=$ROOT/.cache/tokenizers
.venv/bin/ruff check constrain grammars samplers kernels tests benchmarks
# mypy must see the installed layout (grammars/, samplers/, kernels/ live under constrain/ there)
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
MYPY_DIR=$(mktemp -d)
trap 'rm -rf "$MYPY_DIR"' EXIT
cp -r "$SITE/constrain" "$MYPY_DIR/" && cp pyproject.toml "$MYPY_DIR/"
(cd "$MYPY_DIR" && "$ROOT/.venv/bin/mypy" --cache-dir "$ROOT/.cache/mypy" -p constrain)
.venv/bin/pytest -q tests "$@"
