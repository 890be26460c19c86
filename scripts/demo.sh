#!/usr/bin/env bash
# The main job from a fresh clone: set-up, then `coldgate demo` on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/coldgate demo "$@"
