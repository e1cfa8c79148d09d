"""The console as a new user meets it: one report per skipped metric, whole paths, plain progress
lines off a terminal, and a `weights download` failure that names the weight and the override."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_run_off_a_terminal_prints_plain_progress_and_each_skip_once(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "50", "VIDEDITBENCH_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    for k in [k for k in env if k.startswith("VIDEDITBENCH_WEIGHT_")]:
        env.pop(k)
    results = tmp_path / "a-rather-long-results-directory-name" / "nested"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--methods", "source,flow-propagate", "--metrics",
         "clip_text,temporal_flickering", "--num-frames", "4", "--size", "32", "--limit", "3", "--device", "cpu",
         "--results-dir", str(results), "--name", "r", "--no-export"],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    fix = "videditbench weights download clip-vit-large-patch14"
    assert out.count(fix) == 1, out  # a skipped metric is reported once
    assert "edit source: 3/3" in out  # plain progress lines although stdout is a pipe
    db = str(results / "r" / "results.sqlite")
    assert any(line.strip() == f"results: {db}" for line in out.splitlines()), out  # never wrapped mid-path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_weights_download_failure_names_the_weight_and_the_override_and_leaves_no_temp_file(tmp_path):
    cache = tmp_path / "cache"
    code = (
        "import sys; from bench.weights import WeightSpec, register_weight; "
        f"register_weight(WeightSpec('test-unreachable', 'url', 'http://127.0.0.1:{_closed_port()}/w.pth', "
        "filename='w.pth', licence='none', used_by=('x',), size_mb=1)); "
        "from bench.cli import main; sys.argv = ['videditbench', 'weights', 'download', 'test-unreachable']; main()"
    )
    env = {**os.environ, "VIDEDITBENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "0", "VIDEDITBENCH_OFFLINE": "0",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    err = " ".join(proc.stderr.split())
    assert "'test-unreachable'" in err and "$VIDEDITBENCH_WEIGHT_TEST_UNREACHABLE" in err, proc.stderr
    assert "Traceback" not in proc.stderr
    leftovers = [p for p in cache.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
