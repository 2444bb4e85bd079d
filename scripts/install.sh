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
  log=.venv/install.log
  {
    .venv/bin/python -c 'import torch' 2>/dev/null \
      || .venv/bin/pip install "torch==2.13.0" \
      || .venv/bin/pip install torch
    .venv/bin/pip install -e ".[dev,tflite]"
  } >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "installation failed; full log: $log" >&2; exit 1; }
  # An old-board agent environment: tflite-runtime 2.14 needs numpy<2 (and Python <= 3.11).
  { "$PY" -m venv .venv/agent-np1 && .venv/agent-np1/bin/pip install "numpy<2" "tflite-runtime==2.14.0"; } \
    >>"$log" 2>&1 || echo "note: no numpy<2 tflite-runtime environment (tests of it will be skipped)" >&2
  touch "$stamp"
fi
