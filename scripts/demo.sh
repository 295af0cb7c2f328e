#!/usr/bin/env bash
# Set up (see setup.sh) and run constrained generation on the embedded SmolLM2-135M-Instruct.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/constrain generate --seed 0 --temperature 0.7 \
  --regex '(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])' \
  "On which date did Apollo 11 land on the Moon? Answer with the date only, as YYYY-MM-DD."
# and a JSON Schema (compact JSON, properties in the schema's order, validated by construction)
SCHEMA=$(mktemp --suffix=.json)
trap 'rm -f "$SCHEMA"' EXIT
cat > "$SCHEMA" <<'JSON'
{"type": "object", "properties": {"name": {"type": "string", "maxLength": 40},
 "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
 "crew": {"type": "array", "items": {"type": "string", "maxLength": 30}, "minItems": 1, "maxItems": 3}},
 "required": ["name", "year", "crew"], "additionalProperties": false}
JSON
.venv/bin/constrain generate --seed 0 --temperature 0.7 --schema "$SCHEMA" \
  "Describe the Apollo 11 mission as JSON with its name, year and crew."
