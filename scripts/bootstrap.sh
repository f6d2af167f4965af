#!/usr/bin/env bash
# Prepare a fresh machine: PostgreSQL server binaries, a virtualenv in .venv, the package with its extras.
# Idempotent and quick when everything is already there. Used by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  echo "== installing PostgreSQL server (initdb/pg_ctl are missing)"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server binaries are missing: install them (Debian: sudo apt-get install postgresql)" >&2
    exit 2
  fi
fi

# The dashboard's browser tests (tests/ui) drive Debian's chromium through its chromedriver; skipped, with the
# reason, where it cannot be installed.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium and chromium-driver (browser tests of the dashboard)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || echo "could not install chromium: the dashboard's browser tests will be skipped" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=".venv/.lora-pipeline-installed"
extras="${LORA_PIPELINE_EXTRAS:-dev,train}"
want="$(sha256sum pyproject.toml | cut -c1-16) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== installing lora-pipeline[$extras] (first run takes about a minute)"
  python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if [[ "$extras" == *train* ]] && ! python -c "import torch" >/dev/null 2>&1; then
    # The CPU build (on this machine's disk); a loose requirement would pull a multi-GB CUDA build.
    python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  fi
  python -m pip install -q -e ".[$extras]"
  echo "$want" > "$stamp"
fi
