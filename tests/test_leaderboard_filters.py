"""Exports a user can shape: leaderboard --methods/--exclude-methods/--metrics/--task, and a method that
shrinks the paired set is named with the size of the comparison without it (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench import cli
from bench.api.catalog import METHODS
from bench.api.method import Method
from bench.media.video_io import write_frames


class _Shift(Method):
    """Rolls frames by `step` pixels per frame; fails on clips whose tag (first pixel) is in `fail_on`."""

    tasks = frozenset({"text", "image"})
    step, fail_on = 1, ()

    def edit(self, video, **kw):
        if int(video.frames[0, 0, 0, 0]) in self.fail_on:
            raise RuntimeError("cannot edit this clip")
        return np.stack([np.roll(f, self.step * i, axis=1) for i, f in enumerate(video.frames)])


for _name, _step, _fail in (("filt-a", 1, ()), ("filt-b", 2, ()), ("filt-flaky", 3, (10, 11, 12, 13))):
    if _name not in METHODS.names():
        METHODS.register(_name, type(_name, (_Shift,), {"name": _name, "step": _step, "fail_on": _fail}))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("filters")
    rng = np.random.default_rng(4)
    videos = []
    for i in range(8):
        base = rng.integers(20, 256, size=(20, 20, 3)).astype(np.uint8)
        base[0, 0, 0] = 10 + i  # the clip's tag, read by `fail_on`
        write_frames(tmp_path / "clips" / f"v{i}", np.stack([np.roll(base, k, axis=0) for k in range(4)]))
        videos.append(f"  - id: v{i}\n    source: clips/v{i}\n    source_prompt: a thing\n    edits:\n"
                      f"      - {{id: e, edit_type: style, target_prompt: a thing in oil}}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: filt\npreprocess: {num_frames: 4, size: 16, resample: nearest}\nvideos:\n" + "".join(videos))
    res = CliRunner().invoke(cli.app, [
        "run", "--suite", str(suite), "--methods", "source,filt-a,filt-b,filt-flaky", "--metrics",
        "temporal_flickering,warp_error@flow=dis", "--device", "cpu", "--results-dir", str(tmp_path / "runs"),
        "--name", "r"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return tmp_path / "runs" / "r"


def _board(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "leaderboard.csv")


def test_a_method_that_shrinks_the_paired_set_is_named_and_can_be_left_out(run, tmp_path):
    md = (run / "leaderboard" / "leaderboard.md").read_text()
    assert "Paired set shrunk by filt-flaky: it finished 4 of 8 samples; without it the others are compared on 8" in md
    out = tmp_path / "without"
    res = CliRunner().invoke(cli.app, ["leaderboard", str(run), "--exclude-methods", "filt-flaky", "--out", str(out),
                                       "--no-report"])
    assert res.exit_code == 0, res.output
    board = _board(out)
    assert set(board["method"]) == {"source", "filt-a", "filt-b"}
    assert set(board.loc[board["method"] == "filt-a", "n"]) == {8}


def test_leaderboard_filters_methods_metrics_and_task(run, tmp_path):
    out = tmp_path / "narrow"
    res = CliRunner().invoke(cli.app, ["leaderboard", str(run), "--methods", "filt-a", "--metrics",
                                       "temporal_flickering", "--task", "text", "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    board = _board(out)
    assert set(board["method"]) == {"source", "filt-a"}  # the reference row stays
    assert set(board["metric"]) == {"temporal_flickering"}
    full = _board(run / "leaderboard")
    assert {"filt-b", "filt-flaky"} <= set(full["method"]) and len(set(full["metric"])) == 2  # the run's own stays
    bad = CliRunner().invoke(cli.app, ["leaderboard", str(run), "--methods", "nope", "--out", str(out)])
    assert bad.exit_code == 2 and "nope not in this run; valid:" in bad.output
    no_out = CliRunner().invoke(cli.app, ["leaderboard", str(run), "--methods", "filt-a"])
    assert no_out.exit_code == 2 and "--out" in no_out.output


def test_a_config_run_exports_the_configs_columns_in_its_order(run, tmp_path):
    """`run --config` (a paper's table) exports that config's metrics as columns, in its order, also when
    the leaderboard is rebuilt later; other stored metrics are left out."""
    suite = run.parent.parent / "suite.yaml"
    cfg = tmp_path / "paper.yaml"
    cfg.write_text("metrics:\n  - warp_error@flow=dis\n  - temporal_flickering\n")
    res = CliRunner().invoke(cli.app, ["run", "--suite", str(suite), "--methods", "source,filt-a,filt-b", "--config",
                                       str(cfg), "--device", "cpu", "--results-dir", str(tmp_path / "runs"),
                                       "--name", "paper"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for _ in range(2):  # as the run wrote it, then rebuilt by `videditbench leaderboard`
        header = (tmp_path / "runs" / "paper" / "leaderboard" / "leaderboard.md").read_text()
        line = next(ln for ln in header.splitlines() if ln.startswith("| method | rank"))
        assert line.index("warp_error") < line.index("temporal_flickering")
        board = _board(tmp_path / "runs" / "paper" / "leaderboard")
        assert list(dict.fromkeys(board["metric"])) == ["warp_error", "temporal_flickering"]
        res = CliRunner().invoke(cli.app, ["leaderboard", str(tmp_path / "runs" / "paper"), "--no-report"])
        assert res.exit_code == 0, res.output
