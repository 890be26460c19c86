#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, lint, then pytest.
# Every peer (Mosquitto, PostgreSQL, Modbus servers, pseudo-terminals) is
# started privately by the tests themselves on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# Two workers (pytest-xdist), a file each at a time: most tests wait on a broker, a database or a
# browser, so two halve the wall time on the two-core machines CI runs on; each worker has its own
# private Mosquitto and migrated template databases, and every peer is on a free port.
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
