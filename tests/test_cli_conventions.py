"""The CLI off a terminal: full-width when piped, --json on list, --version, help text kept literal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**{k: v for k, v in os.environ.items() if k != "COLUMNS"}, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=300)


def test_piped_tables_keep_names_whole():
    out = _cli("list", "metrics")
    assert out.returncode == 0, out.stderr
    assert "aesthetic_quality" in out.stdout  # an 80-column pipe folded it as "aesthetic_qual / ity"
    assert any("metrics.vbench_quality:" in line for line in out.stdout.splitlines())


def test_list_json_and_version():
    for what in ("methods", "metrics", "configs", "suites"):
        out = _cli("list", what, "--json")
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        assert rows and all("name" in r for r in rows)
    assert "mini" in [r["name"] for r in json.loads(_cli("list", "suites", "--json").stdout)]
    import bench

    assert _cli("--version").stdout.strip() == f"videditbench {bench.__version__}"


def test_help_text_keeps_brackets_and_flags_show_no_type():
    out = _cli("run", "--help")
    assert out.returncode == 0, out.stderr
    assert "pip install -e '.[ray]'" in out.stdout  # Rich markup ate "[ray]" before
    assert "<bool>" not in out.stdout
