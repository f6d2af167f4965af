#!/usr/bin/env bash
# The README's first command: prepare the machine (once), then run the end-to-end demo on the embedded stack.
# Extra arguments go to examples/demo.py, e.g. `bash scripts/demo.sh --steps 60`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python examples/demo.py "$@"
