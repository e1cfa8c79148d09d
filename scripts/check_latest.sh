#!/usr/bin/env bash
# The scheduled-style check: does the project still work on the newest releases of its dependencies?
# Builds a throw-away venv from pyproject.toml WITHOUT the lock (pip takes the newest releases it may),
# prints every package whose version differs from requirements/ci-lock.txt, then runs the fast subset
# of the tests (or the pytest arguments given). Exit status is pytest's.
#   scripts/check_latest.sh                 # fast subset: -m "not slow"
#   scripts/check_latest.sh tests/test_core.py
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VIDEDITBENCH_LATEST_VENV:-$(mktemp -d)/venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
fi
"$venv/bin/python" -m pip install -q --upgrade -e ".[test]"
echo "[latest] versions that differ from requirements/ci-lock.txt (locked -> now):"
"$venv/bin/python" - <<'PY'
import re, subprocess, sys
locked = {}
for line in open("requirements/ci-lock.txt"):
    m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
    if m:
        locked[m.group(1).lower().replace("_", "-")] = m.group(2)
now = {}
for line in subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                           text=True, check=True).stdout.splitlines():
    m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
    if m:
        now[m.group(1).lower().replace("_", "-")] = m.group(2)
changed = [(k, locked.get(k, "-"), v) for k, v in sorted(now.items()) if locked.get(k) != v]
changed += [(k, v, "-") for k, v in sorted(locked.items()) if k not in now]
for name, old, new in changed:
    print(f"  {name}: {old} -> {new}")
print(f"  ({len(changed)} of {len(now)} packages differ)")
PY
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$#" -eq 0 ]; then set -- -m "not slow"; fi
exec "$venv/bin/python" -m pytest -q "$@"
