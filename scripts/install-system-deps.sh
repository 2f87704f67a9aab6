#!/usr/bin/env bash
# System packages the tests use for real: Prometheus (and promtool) and headless Chromium
# for the dashboard test. Installed from Debian's packages when missing and we are root;
# otherwise prints what to install. Idempotent.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v chromium >/dev/null || need+=(chromium)
command -v kubectl >/dev/null || echo "note: kubectl not found; manifest build tests will be skipped" >&2
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "note: install these system packages for the full test suite: ${need[*]}" >&2
  exit 0
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
