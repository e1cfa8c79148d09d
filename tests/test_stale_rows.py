"""Newest wins, nothing stale: a superseded edit or score never leaves an older ok value in a column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bench import cli
from bench.api.catalog import METHODS
from bench.api.method import Method
from bench.media.video_io import write_frames


class FailsOn(Method):
    """Rolls the frames; raises on clips of `fail_frames` frames or whose first pixel is `fail_pixel`."""

    name = "stale-fails-on"
    tasks = frozenset({"text", "image"})
    defaults = {"fail_frames": 0, "fail_pixel": -1}

    def edit(self, video, **kw):
        if video.num_frames == int(self.cfg["fail_frames"]) or int(video.frames[0, 0, 0, 0]) == int(self.cfg["fail_pixel"]):
            raise RuntimeError("this clip breaks the method")
        return np.stack([np.roll(f, i, axis=1) for i, f in enumerate(video.frames)])


if FailsOn.name not in METHODS.names():
    METHODS.register(FailsOn.name, FailsOn)


def _suite(root: Path, first_pixel: int = 7) -> Path:
    rng = np.random.default_rng(5)
    videos = []
    for v in ("a", "b", "c"):
        base = rng.integers(0, 256, size=(24, 24, 3)).astype(np.uint8)
        base[0, 0] = first_pixel
        write_frames(root / "clips" / v, np.stack([np.roll(base, k, axis=0) for k in range(16)]))
        videos.append(f"  - id: {v}\n    source: clips/{v}\n    source_prompt: a thing\n    edits:\n"
                      f"      - {{id: e1, edit_type: style, target_prompt: a thing in oil}}\n")
    m = root / "suite.yaml"
    m.write_text("name: stale\npreprocess: {size: 16, resample: nearest}\nvideos:\n" + "".join(videos))
    return m


def _run(root: Path, suite: Path, *extra: str) -> pd.DataFrame:
    res = CliRunner().invoke(cli.app, [
        "run", "--suite", str(suite), "--methods", "source,stale-fails-on", "--metrics", "temporal_flickering",
        "--method-opt", "stale-fails-on.fail_frames=16", "--method-opt", "stale-fails-on.fail_pixel=200",
        "--device", "cpu", "--results-dir", str(root / "runs"), "--name", "r", *extra], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    board = pd.read_csv(root / "runs" / "r" / "leaderboard" / "leaderboard.csv")
    return board[board["metric"] == "temporal_flickering"].set_index("method")


def test_a_method_failing_after_a_frame_count_change_shows_no_old_mean(tmp_path):
    suite = _suite(tmp_path)
    before = _run(tmp_path, suite, "--num-frames", "8")
    assert before.loc["stale-fails-on", "n"] == 3 and np.isfinite(before.loc["stale-fails-on", "mean"])
    after = _run(tmp_path, suite, "--num-frames", "16")
    fresh = _run(tmp_path / "fresh", _suite(tmp_path / "fresh"), "--num-frames", "16")
    assert "stale-fails-on" not in after.index or not np.isfinite(after.loc["stale-fails-on", "mean"])
    assert ("stale-fails-on" in after.index) == ("stale-fails-on" in fresh.index)  # as a fresh run shows it
    assert after.loc["source", "n"] == 3
    np.testing.assert_allclose(after.loc["source", "mean"], fresh.loc["source", "mean"])


def test_a_method_failing_on_a_replaced_source_video_shows_no_old_mean(tmp_path):
    suite = _suite(tmp_path)
    before = _run(tmp_path, suite, "--num-frames", "8")
    assert before.loc["stale-fails-on", "n"] == 3
    _suite(tmp_path, first_pixel=200)  # the same paths, new bytes: the method now fails on every clip
    after = _run(tmp_path, suite, "--num-frames", "8")
    assert "stale-fails-on" not in after.index or not np.isfinite(after.loc["stale-fails-on", "mean"])
    assert after.loc["source", "n"] == 3


def test_a_newer_error_row_beats_an_older_ok_row_of_the_same_edit():
    from bench.report.table import build_leaderboard

    def score(method, uid, value, status, created):
        return dict(method=method, method_key=method, sample_uid=uid, metric="m", metric_family="m", variant_id="v",
                    variant_label="", value=value, status=status, higher_is_better=True, level="sample",
                    task="text", created=created, edit_key=f"{method}-{uid}")

    def edit(method, uid, status, created):
        return dict(method=method, method_key=method, sample_uid=uid, sample_key=f"k-{uid}", status=status,
                    task="text", created=created, edit_key=f"{method}-{uid}")

    uids = [f"s/v/{i}" for i in range(6)]
    scores = [score(m, u, 0.5 + 0.01 * i, "ok", 1.0) for m in ("A", "B") for i, u in enumerate(uids)]
    scores.append(score("B", uids[0], np.nan, "error", 2.0))  # the newest score of B on sample 0 failed
    edits = [edit(m, u, "ok", 1.0) for m in ("A", "B") for u in uids]
    lb = build_leaderboard(pd.DataFrame(scores), pd.DataFrame(edits), bootstrap=50)
    row = lb.cells[(lb.cells["method"] == "B") & (lb.cells["metric"] == "m")].iloc[0]
    assert row["n_error"] == 1 and row["n"] == 5
