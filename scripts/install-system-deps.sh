#!/usr/bin/env bash
# Installs the Debian packages the service's dev mode and test suite need, when missing:
# PostgreSQL server binaries (initdb, pg_ctl), node + npm (for the pusher-js tests), and
# Prometheus with promtool and amtool (alert rule tests, the real-Prometheus test), and wrk
# (the benchmark's load generator, which the suite smoke-tests), Chromium (the browser tests),
# and iproute2 + nftables (the test hosts of the partition tests).
# Does nothing when everything is already there; needs root (or sudo) and apt-get otherwise.
set -euo pipefail

missing=()
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
if [ "${1:-}" = "--test" ]; then
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  # the browser tests and the receipt benchmark drive Debian's Chromium through Playwright
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # the fault tests' test hosts: network namespaces (iproute2) cut apart by nft drop rules
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
  # the runbook test runs RUNBOOK.md's log pipelines, which use jq
  command -v jq >/dev/null 2>&1 || missing+=(jq)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  $(printf '%s\n' "${missing[@]}" | sort -u)
# Debian's packages may start servers of their own; the project runs its own.
if command -v service >/dev/null 2>&1; then
  for unit in postgresql prometheus prometheus-alertmanager; do
    $sudo service "$unit" stop >/dev/null 2>&1 || true
  done
fi
