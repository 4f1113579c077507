#!/usr/bin/env bash
# Proves that the set-up works with Debian's own Python (PEP 668: it refuses installs into the
# system interpreter): a scratch copy of this checkout is set up with PYTHON=/usr/bin/python3,
# and its .venv must be that interpreter's, run the console scripts, pass the CRD drift check
# and the package tests.  The checkout's own .venv is not touched.  CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${CHECK_SETUP_PYTHON:-/usr/bin/python3}"
if [ ! -x "$PY" ]; then
  echo "check-setup: $PY does not exist: this check is for Debian/Ubuntu's system Python" >&2
  exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The working tree as it is (tracked and new files), without .venv/ or build/.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
  [ -e "$file" ] && printf '%s\0' "$file"
done | xargs -0 cp --parents -t "$scratch"

start=$(date +%s)
(cd "$scratch" && PYTHON="$PY" bash scripts/setup.sh)
venv="$scratch/.venv/bin/python"
want=$("$PY" -c 'import sys; print(sys.base_prefix)')
have=$("$venv" -c 'import sys; print(sys.base_prefix)')
if [ "$want" != "$have" ] || [ "$("$venv" -c 'import sys; print(sys.prefix)')" != "$scratch/.venv" ]; then
  echo "check-setup: the venv was made by $have, not by $PY" >&2
  exit 1
fi
"$scratch/.venv/bin/airlock" --help >/dev/null
"$scratch/.venv/bin/kubectl-airlock" --help >/dev/null
(cd "$scratch" && make crds-check >/dev/null)
(cd "$scratch" && .venv/bin/python -m pytest -q -p no:cacheprovider tests/package | tail -1)
echo "check-setup: set up with $PY ($("$venv" --version)) in $(( $(date +%s) - start ))s: ok"
