#!/usr/bin/env bash
# The test suite: lint, then pytest (installs what it needs first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
