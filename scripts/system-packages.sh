#!/usr/bin/env bash
# The system packages the tests start or drive, installed from Debian's archive when missing: PostgreSQL and
# Redis (tests start their own servers from these binaries) and Chromium (browser tests, driven by
# Playwright); with `bench`, also wrk and nginx (the gateway_proxy benchmark's load generator and the proxy
# it measures the gateway beside). Needs root and apt-get; without them it says what is missing and leaves it
# to the caller.
#   scripts/system-packages.sh [test|bench]
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${1:-test}" = bench ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
