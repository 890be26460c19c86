#!/usr/bin/env bash
# Moves constraints.txt to the newest releases that pyproject.toml's ranges allow,
# on purpose and tested: resolves in a throw-away virtualenv with no constraints,
# writes the pins, reinstalls .venv from them and runs the whole test suite.
# Commit constraints.txt only if the tests pass.
#
#   bash scripts/update-constraints.sh            # update every pin
#   bash scripts/update-constraints.sh --no-test  # only resolve and write
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q '.[gateway,cloud,test]'
{
  echo "# Every version a fresh install of Coldgate gets (scripts/setup.sh and CI install with -c)."
  echo "# pyproject.toml keeps the ranges for people who install the package into their own environment."
  echo "# Regenerate on purpose with: bash scripts/update-constraints.sh (it runs the tests on the new set)."
  "$work/venv/bin/python" -m pip freeze --all --exclude coldgate | grep -v -E '^(pip|setuptools|wheel)=='
} > constraints.txt
echo "wrote constraints.txt ($(grep -c '==' constraints.txt) pins)"
if [ "${1:-}" != "--no-test" ]; then
  bash scripts/test.sh
fi
