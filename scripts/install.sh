#!/usr/bin/env bash
# Create .venv in the repository and install lutfarm into it (idempotent, fast when done).
#   scripts/install.sh        everything the tests use: the TFLite toolchain (litert-torch pulls
#                             jax and transformers), test tools, a numpy<2 agent environment
#   scripts/install.sh demo   only what the demo uses: torch (CPU), onnx, onnxruntime
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-full}
case "$what" in full|demo) ;; *) echo "usage: scripts/install.sh [demo]" >&2; exit 2 ;; esac
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "lutfarm's controller needs Python >= 3.10 (found $("$PY" --version)); set PYTHON=python3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
hash=$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
# a full installation serves the demo too
[ -f ".venv/.installed-full-$hash" ] && exit 0
[ "$what" = demo ] && [ -f ".venv/.installed-demo-$hash" ] && exit 0
log=.venv/install.log
start=$SECONDS
if [ "$what" = demo ]; then
  echo "installing lutfarm into .venv (first run only; torch CPU, onnx, onnxruntime) ..." >&2
else
  echo "installing lutfarm with its TFLite toolchain and test tools into .venv (first run only) ..." >&2
fi
{
  # The CPU build of torch first: an unpinned 'torch' would pull a multi-GB CUDA build.
  .venv/bin/python -c 'import torch' 2>/dev/null \
    || .venv/bin/pip install "torch==2.13.0" \
    || .venv/bin/pip install torch
  if [ "$what" = demo ]; then .venv/bin/pip install -e .; else .venv/bin/pip install -e ".[dev,tflite]"; fi
} >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "installation failed; full log: $log" >&2; exit 1; }
if [ "$what" = full ]; then
  # An old-board agent environment: tflite-runtime 2.14 needs numpy<2 (and Python <= 3.11).
  { "$PY" -m venv .venv/agent-np1 && .venv/agent-np1/bin/pip install "numpy<2" "tflite-runtime==2.14.0"; } \
    >>"$log" 2>&1 || echo "note: no numpy<2 tflite-runtime environment (tests of it will be skipped)" >&2
fi
echo "installed in $((SECONDS - start)) s; .venv is $(du -sh .venv | cut -f1)" >&2
touch ".venv/.installed-$what-$hash"
