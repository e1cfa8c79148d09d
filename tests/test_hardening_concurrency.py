"""Issue 7: three runs on one folder at once; SIGTERM stops a run cleanly (children killed, resume hint)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.store.results import ResultStore

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _cmd(results: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "run_bench.py"), "run", "--methods", "source,color-transfer", "--metrics",
            "temporal_flickering", "--num-frames", "4", "--size", "32", "--device", "cpu", "--limit", "3",
            "--results-dir", str(results), "--name", "shared", "--no-export", *extra]


def test_three_concurrent_runs_on_one_folder_are_safe(tmp_path):
    results = tmp_path / "results"
    procs = [subprocess.Popen(_cmd(results), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    refused = 0
    for rc, out, err in outs:
        assert "Traceback" not in err, err[-2000:]
        if rc != 0:
            assert rc == 2, err[-2000:]
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1 and "in use by another videditbench process" in lines[0], err
            refused += 1
    assert refused < 3
    again = subprocess.run(_cmd(results), env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    with ResultStore(results / "shared") as st:
        edits = [r for r in st.iter_edits() if r["status"] != "not_applicable"]
    ok = [r for r in edits if r["status"] == "ok"]
    assert len(ok) == len(edits) and len(ok) >= 3  # every applicable edit ok, none stored as an error
    assert all(Path(r["output_dir"]).is_dir() for r in ok)


HANG = """
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_kills_external_children_and_says_how_to_resume(tmp_path, sig):
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent(HANG))
    pidfile = tmp_path / "child.pid"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"methods: [external]\nmethod_options:\n  external:\n"
                   f"    command: [{sys.executable!r}, {str(script)!r}, {str(pidfile)!r}, '{{output}}']\n"
                   f"    log_dir: {str(tmp_path / 'logs')!r}\n")
    cmd = [sys.executable, str(REPO / "run_bench.py"), "run", "--config", str(cfg), "--metrics", "temporal_flickering",
           "--num-frames", "4", "--size", "32", "--device", "cpu", "--limit", "2", "--results-dir",
           str(tmp_path / "results"), "--name", "term", "--no-export"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.time() < deadline:
        time.sleep(0.1)
    child = int(pidfile.read_text())
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert "Traceback" not in err
    assert f"interrupted ({signal.Signals(sig).name})" in err and "run the same command again to resume" in err
    time.sleep(0.2)
    try:
        os.kill(child, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the external child survived SIGTERM of the run"
