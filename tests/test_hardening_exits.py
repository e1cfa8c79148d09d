"""Issue 25, item 13: leftovers and exit codes (stale external work folders, SIGTERM during export, a
SIGTERM that Ray turns into a plain KeyboardInterrupt, os._exit and KeyboardInterrupt inside adapters)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from unittest import mock

from typer.testing import CliRunner

import bench.cli as cli
import bench.cli.run as cli_run
from bench.api.catalog import METHODS
from bench.method import Method
from bench.store.results import ResultStore

REPO = Path(__file__).resolve().parents[1]
TINY = ["--suite", "mini", "--metrics", "temporal_flickering", "--limit", "1", "--num-frames", "4", "--size", "32",
        "--device", "cpu"]


class _RaisesKeyboardInterrupt(Method):
    name = "hard-raises-kbi"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        raise KeyboardInterrupt


if _RaisesKeyboardInterrupt.name not in METHODS.names():
    METHODS.register(_RaisesKeyboardInterrupt.name, _RaisesKeyboardInterrupt)


def test_stale_external_work_folders_are_removed_at_start_live_ones_kept():
    import fcntl

    LOCK_NAME = ".owner.lock"  # noqa: N806  (methods.external.LOCK_NAME)

    root = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix="videditbench-external-", dir=root))
    (stale / LOCK_NAME).touch()
    (stale / "input").mkdir()
    live = Path(tempfile.mkdtemp(prefix="videditbench-external-", dir=root))
    fd = os.open(live / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # an edit in progress (another open file description conflicts like a process)
    try:
        METHODS.get("external")(command=["true"])
        assert not stale.exists(), "a killed edit's work folder stayed"
        assert live.exists(), "a running edit's work folder was removed"
    finally:
        os.close(fd)
        import shutil

        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)


def test_sigterm_during_export_is_one_line_with_how_to_resume(tmp_path):
    res = CliRunner().invoke(cli.app, ["run", *TINY, "--methods", "source", "--no-export", "--results-dir",
                                       str(tmp_path), "--name", "r"])
    assert res.exit_code == 0, res.output

    def slow_export(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    with mock.patch.object(cli_run, "_write_exports", slow_export):
        res = CliRunner().invoke(cli.app, ["leaderboard", str(tmp_path / "r")])
    assert res.exit_code == 143, (res.exit_code, res.output)
    err = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "SIGTERM" in err[0] and "videditbench leaderboard" in res.output


def test_a_sigterm_that_ray_turns_into_keyboardinterrupt_is_reported_as_sigterm(tmp_path):
    from bench.running.guard import interruptible

    def ray_like(config, **kw):
        with interruptible():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except KeyboardInterrupt:
                raise KeyboardInterrupt() from None  # what ray.get does with any KeyboardInterrupt

    with mock.patch("bench.running.runner.run_benchmark", ray_like):
        res = CliRunner().invoke(cli.app, ["run", *TINY, "--methods", "source", "--no-export", "--results-dir",
                                           str(tmp_path), "--name", "r"])
    assert res.exit_code == 143 and "interrupted (SIGTERM)" in res.output, (res.exit_code, res.output)


def test_an_adapter_raising_keyboardinterrupt_is_an_error_row_not_a_ctrl_c(tmp_path):
    res = CliRunner().invoke(cli.app, ["run", *TINY, "--methods", _RaisesKeyboardInterrupt.name, "--no-export",
                                       "--results-dir", str(tmp_path), "--name", "r"])
    assert "interrupted" not in res.output and res.exit_code == 1, (res.exit_code, res.output)
    with ResultStore(tmp_path / "r") as st:
        rows = list(st.iter_edits())
    assert [r["status"] for r in rows] == ["error"] and "KeyboardInterrupt" in rows[0]["message"]


def test_os_exit_inside_an_adapter_does_not_end_the_run_as_success(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from bench.api.catalog import METHODS
        from bench.method import Method
        import bench.cli as cli

        class Exits(Method):
            name = "hard-os-exit"
            tasks = frozenset({{"text", "image"}})
            def edit(self, video, **kw):
                os._exit(0)

        METHODS.register(Exits.name, Exits)
        cli.app(sys.argv[1:])
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, str(driver), "run", *TINY, "--methods", "source,hard-os-exit", "--results-dir",
                        str(tmp_path / "runs"), "--name", "r"], capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    assert (tmp_path / "runs" / "r" / "leaderboard" / "leaderboard.md").is_file(), (p.returncode, p.stdout, p.stderr)
    with ResultStore(tmp_path / "runs" / "r") as st:
        rows = {r["method"]: r for r in st.iter_edits()}
    assert rows["hard-os-exit"]["status"] == "error" and "os._exit" in rows["hard-os-exit"]["message"]
    assert rows["source"]["status"] == "ok"
