"""Issue 25, item 7: `--timeout` holds even when an adapter's bare `except:` swallows the interruption."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

import bench.cli as cli
from bench.api.catalog import METHODS
from bench.errors import VidEditBenchError
from bench.running.guard import GuardedMethod
from bench.method import Method
from bench.store.results import ResultStore
from bench.types import Video


class _Swallows(Method):
    name = "hard-swallows-timeout"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            try:
                time.sleep(2.5 - (time.monotonic() - t0))
            except:  # noqa: E722  (the point of the test)
                pass
        return video.frames.copy()


if _Swallows.name not in METHODS.names():
    METHODS.register(_Swallows.name, _Swallows)


def test_a_bare_except_does_not_swallow_the_time_limit():
    m = GuardedMethod(_Swallows(), timeout_s=0.5)
    with pytest.raises(VidEditBenchError, match="timed out after 0.5 s"):
        m.edit(Video(np.zeros((2, 8, 8, 3), np.uint8), fps=8.0))


def test_the_run_stores_an_error_row_not_ok(tmp_path):
    res = CliRunner().invoke(cli.app, ["run", "--suite", "mini", "--methods", _Swallows.name, "--metrics",
                                       "temporal_flickering", "--limit", "1", "--timeout", "1", "--num-frames", "4",
                                       "--size", "32", "--device", "cpu", "--no-export", "--results-dir",
                                       str(tmp_path), "--name", "t"])
    assert "Traceback" not in res.output, res.output
    with ResultStore(tmp_path / "t") as st:
        rows = list(st.iter_edits())
    assert rows and {r["status"] for r in rows} == {"error"} and "timed out" in rows[0]["message"]
