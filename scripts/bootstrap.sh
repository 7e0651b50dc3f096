#!/usr/bin/env bash
# Create .venv and install fileregistry (editable) with the given extras; re-run only when
# pyproject.toml changed. Sourced by serve.sh and test.sh.
set -euo pipefail
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.fileregistry-installed${EXTRAS:+-$EXTRAS}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi
