"""The project as a user installs it from a wheel (not editable): the embedded suite is package data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_install_runs_the_main_job_on_the_embedded_suite(tmp_path):
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = wheels.glob("videditbench-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    # The installed copy, not this checkout: PYTHONPATH comes before the editable install's finder,
    # and the command runs outside the repository.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import bench; print(bench.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(site)), where.stdout
    suites = subprocess.run([sys.executable, "-m", "bench.cli", "list", "suites"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert suites.returncode == 0 and "mini" in suites.stdout, suites.stdout + suites.stderr
    run = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--limit", "2", "--metrics", "temporal_flickering", "--num-frames", "4", "--size", "32", "--device", "cpu",
         "--results-dir", str(work / "results"), "--name", "wheel"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "new edits: " in run.stdout and "new edits: 0" not in run.stdout, run.stdout[-2000:]
    board = (work / "results" / "wheel" / "leaderboard" / "leaderboard.csv").read_text()
    assert "\ntext,True,source,temporal_flickering," in board
    assert (work / "results" / "wheel" / "leaderboard" / "report.html").is_file()
