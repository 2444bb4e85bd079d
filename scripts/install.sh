#!/usr/bin/env bash
# Create .venv in the repository and install lutfarm into it (idempotent, fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "lutfarm's controller needs Python >= 3.10 (found $("$PY" --version)); set PYTHON=python3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.installed-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing lutfarm into .venv (first run only) ..." >&2
  # The CPU build of torch first: an unpinned 'torch' would pull a multi-GB CUDA build.
  .venv/bin/python -c 'import torch' 2>/dev/null \
    || .venv/bin/pip install -q "torch==2.13.0" 2>/dev/null \
    || .venv/bin/pip install -q torch
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi
