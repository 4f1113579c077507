#!/usr/bin/env bash
# Installs what airlock's tests and demo need, into this checkout only:
#   - Debian's prometheus (a real Prometheus + promtool), make and python3-venv (apt, as root);
#   - a virtual environment .venv/ owned by the checkout, holding the package with its dev
#     extras (kopf, kmock, kubectl, pytest, linters).
# Nothing is installed into the system's Python: Debian 12 refuses that (PEP 668), and a
# shared interpreter's other packages would conflict.  Idempotent; `make` runs it once and
# again when pyproject.toml or this script changes.
#
# Which Python makes the venv: $PYTHON if set, else the first python3 on the PATH (Debian's
# /usr/bin/python3 on a stock machine, a pyenv or distribution Python elsewhere).  >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP=build/.setup-done

need_apt=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need_apt+=(prometheus)
command -v make >/dev/null || need_apt+=(make)
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "setup: $PYTHON is missing or older than 3.11; install python3 (Debian 12: apt-get install python3) or set PYTHON=/path/to/python3.11+" >&2
  exit 1
fi
# `python3 -m venv` needs ensurepip, which Debian and Ubuntu ship separately (python3-venv);
# --help works without it, so try the real thing in a scratch directory.
probe=$(mktemp -d)
if ! "$PYTHON" -m venv "$probe/v" >/dev/null 2>&1; then
  pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  need_apt+=(python3-venv "python${pyver}-venv")
fi
rm -rf "$probe"

if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: needs root to install ${need_apt[*]} (run: sudo apt-get install -y --no-install-recommends ${need_apt[*]}), then run this again" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's package starts a system Prometheus on :9090; airlock's tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi

# A venv made by another interpreter (or a half-made one) is replaced, not patched.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then rm -rf "$VENV"; fi
if [ -x "$VENV/bin/python" ]; then
  want=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
  have=$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)')
  [ "$want" = "$have" ] || rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e '.[dev]'
mkdir -p build && touch "$STAMP"
echo "setup: done (prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), $("$VENV/bin/python" --version) in $VENV from $PYTHON)"
