#!/usr/bin/env bash
# The test suite: lint, then pytest (installs what it needs first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The farm tests start real OpenSSH servers; install Debian's openssh-server where we can.
if ! [ -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing openssh-server for the farm tests ..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server; } \
    >.venv/apt.log 2>&1 || { tail -n 20 .venv/apt.log >&2; echo "could not install openssh-server; farm tests will be skipped" >&2; }
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
