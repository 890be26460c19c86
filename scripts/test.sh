#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, lint, then pytest.
# Every peer (Mosquitto, PostgreSQL, Modbus servers, pseudo-terminals) is
# started privately by the tests themselves on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
