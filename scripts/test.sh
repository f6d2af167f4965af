#!/usr/bin/env bash
# The project's test command (README, .ci/run): lint, types, generated-code drift, then the test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# shellcheck disable=SC1091
. .venv/bin/activate

echo "== ruff"
ruff check src tests bench examples scripts
ruff format --check src tests bench examples scripts
echo "== mypy"
mypy
echo "== async twins are up to date"
python scripts/generate_async.py --check
echo "== pytest"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest -q "$@"
