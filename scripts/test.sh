#!/usr/bin/env bash
# The test suite: lint, then pytest (installs what it needs first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The farm tests start real OpenSSH servers, and emulated ARM boards (debootstrap + qemu-user);
# board clocks are set through sudo; the shared-store tests start a PostgreSQL server, the
# dashboard tests a headless Chromium; the accuracy tests read Debian's Fashion-MNIST. Install
# Debian's packages for them where we can.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { [ -x /usr/sbin/sshd ] \
     && command -v debootstrap && command -v sudo \
     && [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] \
     && ls /usr/lib/postgresql/*/bin/initdb && command -v chromedriver \
     && [ -d /usr/share/datasets/fashion-mnist ]; } >/dev/null 2>&1; then
  echo "installing openssh-server, debootstrap, qemu-user-static, sudo, postgresql," \
       "chromium and dataset-fashion-mnist for the farm, dashboard and accuracy tests ..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server \
      debootstrap qemu-user-static sudo postgresql chromium chromium-driver \
      dataset-fashion-mnist; } >.venv/apt.log 2>&1 \
    || { tail -n 20 .venv/apt.log >&2; echo "could not install them; those tests will be skipped" >&2; }
fi
# The MCU tests build lutfarm's firmware with Debian's arm-none-eabi toolchain and run it under
# qemu-system-arm (builds are cached by content hash in ~/.cache/lutfarm/firmware).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v arm-none-eabi-gcc \
     && command -v qemu-system-arm && command -v make; } >/dev/null 2>&1; then
  echo "installing the arm-none-eabi toolchain and qemu-system-arm for the MCU tests ..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends make gcc-arm-none-eabi libnewlib-arm-none-eabi \
      libstdc++-arm-none-eabi-newlib qemu-system-arm; } >.venv/apt-mcu.log 2>&1 \
    || { tail -n 20 .venv/apt-mcu.log >&2; echo "could not install them; MCU tests will be skipped" >&2; }
fi
.venv/bin/ruff check .
# Layers (import-linter contracts in pyproject.toml). grimp reads packages as installed, and the
# development install maps folders onto lutfarm.*, so check a regular install of this tree.
rm -rf .venv/layers
.venv/bin/pip install --quiet --no-deps --no-build-isolation --target .venv/layers . 2>/dev/null
rm -rf build
layers=$(cd .venv/layers && PYTHONPATH=. ../bin/lint-imports --no-cache ../../pyproject.toml) \
  || { echo "$layers"; exit 1; }
echo "$layers" | tail -n 5
exec .venv/bin/python -m pytest "$@"
