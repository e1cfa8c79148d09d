#!/usr/bin/env bash
# Rebuild requirements/ci-lock.txt: a fresh venv from pyproject.toml with the newest releases pip
# resolves today, frozen. Run it on CI's kind of machine (CPython 3.11, x86_64 Linux), then run the
# test suite with .ci/run before committing the new lock.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$venv/bin/python" -m pip install -q -e ".[test]"
{
  echo "# The exact versions CI tested (CPython 3.11, x86_64 Linux): pip constraints for .ci/run."
  echo "# Regenerate with: scripts/update_lock.sh (builds a fresh venv from pyproject.toml and freezes it)."
  "$venv/bin/python" -m pip freeze --exclude-editable | grep -vi '^videditbench'
} > requirements/ci-lock.txt
echo "wrote requirements/ci-lock.txt from $venv"
