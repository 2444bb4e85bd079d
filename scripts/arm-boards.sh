#!/usr/bin/env bash
# Emulated ARM boards to try the farm without hardware: Debian 12 arm64 and armhf root
# filesystems run by qemu-user, each with its own sshd in its own network namespace, and an
# inventory (arm-farm/farm.toml) to point lutfarm at. Their timings are NOT hardware timings
# (lutfarm marks them emulated). Needs root; the first start builds the boards (minutes),
# later starts take seconds. Ctrl-C stops them. Options: --archs arm64,armhf --out DIR
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh demo
if [ "$(id -u)" = 0 ] && ! { command -v debootstrap && [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ]; } >/dev/null; then
  echo "installing debootstrap and qemu-user-static ..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap \
      qemu-user-static openssh-client iproute2; } >.venv/apt-boards.log 2>&1 \
    || { tail -n 20 .venv/apt-boards.log >&2; exit 1; }
fi
exec .venv/bin/python tests/armboards.py "$@"
