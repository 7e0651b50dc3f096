#!/usr/bin/env bash
# Create .venv and install fileregistry (editable) with the given extras, at the versions pinned
# in constraints.txt; re-run only when pyproject.toml or constraints.txt changed. Used by serve.sh
# and test.sh.
set -euo pipefail
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.fileregistry-installed${EXTRAS:+-$EXTRAS}"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi
