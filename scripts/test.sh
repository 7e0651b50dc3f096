#!/usr/bin/env bash
# Run the whole test suite. Installs what it needs: the venv and Python deps, and (as root,
# where missing) OpenSSH's server and the peer tools the benchmarks compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test

need_apt=()
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need_apt+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the web UI's browser tests (driven by Playwright)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} ..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "warning: ${need_apt[*]} missing and not root: the tests that need them will skip (fail under CI=true)" >&2
  fi
fi

exec .venv/bin/python -m pytest "$@"
