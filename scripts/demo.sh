#!/usr/bin/env bash
# Set up (see setup.sh) and run constrained generation on the embedded SmolLM2-135M-Instruct.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/constrain generate --seed 0 --temperature 0.7 \
  --regex '(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])' \
  "On which date did Apollo 11 land on the Moon? Answer with the date only, as YYYY-MM-DD."
