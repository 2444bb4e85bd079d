#!/usr/bin/env bash
# The main job: profile this machine on the FBNet CIFAR layout, write its LUT, price example archs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh demo
exec .venv/bin/lutfarm demo "$@"
