#!/usr/bin/env bash
# Run the service on its embedded default: SQLite + ./fileregistry-data. Extra args go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh ""
exec .venv/bin/fileregistry serve "$@"
