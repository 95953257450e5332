#!/usr/bin/env bash
# Installs what the test suite needs from Debian's packages, if missing:
# redis-server (Redis backend tests), coturn (TURN tests), nginx (load-balancer
# test), chromium (browser end-to-end tests), iproute2 + util-linux (the
# loopback-only network namespace the browser tests run in), postgresql (the
# moderation store's PostgreSQL backend tests; they start their own server).
# Usage: scripts/deps.sh [--check]   (--check only reports what is missing)
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have redis-server || need+=(redis-server)
have turnserver || need+=(coturn)
have nginx || [ -x /usr/sbin/nginx ] || need+=(nginx)
have chromium || need+=(chromium)
have ip || need+=(iproute2)
have unshare || need+=(util-linux)
have node || need+=(nodejs npm)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "missing Debian packages: ${need[*]} (install: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "scripts/deps.sh: installing ${need[*]} from Debian's packages" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if have sudo; then SUDO=sudo; else
    echo "scripts/deps.sh: need root to install ${need[*]}; run: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts these services on install; the tests start their own.
for svc in redis-server coturn nginx postgresql; do
  $SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
