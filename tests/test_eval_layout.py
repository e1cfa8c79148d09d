"""`eval` as users expect: the documented layouts work, missing samples are one summary line (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from bench import cli
from bench.media.video_io import write_frames
from bench.store.results import ResultStore


def _suite(root: Path) -> Path:
    rng = np.random.default_rng(2)
    videos = []
    for v in ("a", "b"):
        base = rng.integers(0, 256, size=(20, 20, 3)).astype(np.uint8)
        write_frames(root / "clips" / v, np.stack([np.roll(base, k, axis=1) for k in range(4)]))
        videos.append(f"  - id: {v}\n    source: clips/{v}\n    source_prompt: a thing\n    edits:\n"
                      f"      - {{id: oil, edit_type: style, target_prompt: a thing in oil}}\n"
                      f"      - {{id: red, edit_type: foreground, target_prompt: a red thing}}\n")
    m = root / "suite.yaml"
    m.write_text("name: lay\npreprocess: {num_frames: 4, size: 16}\nvideos:\n" + "".join(videos))
    return m


def _edit(path: Path) -> None:
    frames = np.random.default_rng(len(str(path))).integers(0, 256, size=(4, 16, 16, 3)).astype(np.uint8)
    write_frames(path, frames)


def test_suite_show_lists_the_ids_eval_folders_are_named_after(tmp_path):
    suite = _suite(tmp_path)
    res = CliRunner().invoke(cli.app, ["suite", "show", str(suite), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [(r["video_id"], r["edit_id"]) for r in rows] == [("a", "oil"), ("a", "red"), ("b", "oil"), ("b", "red")]


def test_eval_reads_every_layout_and_summarises_missing_samples_in_one_line(tmp_path):
    suite = _suite(tmp_path)
    edits = tmp_path / "mine"
    _edit(edits / "a" / "oil")  # <video_id>/<edit_id>
    _edit(edits / "lay" / "a" / "red")  # <suite>/<video_id>/<edit_id> (the sample uid as a path)
    _edit(edits / "b__oil")  # flat <video_id>__<edit_id>
    res = CliRunner().invoke(cli.app, ["eval", str(edits), "--suite", str(suite), "--metrics", "temporal_flickering",
                                       "--device", "cpu", "--results-dir", str(tmp_path / "runs"), "--no-export"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "have no edit" in ln]
    assert len(lines) == 1 and "1 of 4 samples have no edit" in lines[0] and "scoring the 3 found" in lines[0]
    run = tmp_path / "runs" / "suite"  # the suite's run (the manifest's stem), where `run` puts `source`
    assert (run / "eval_missing.txt").read_text().startswith("lay/b/red\t")
    with ResultStore(run) as st:
        ok = sorted(r["sample_uid"] for r in st.iter_edits("ok"))
        errors = list(st.iter_edits("error"))
    assert ok == ["lay/a/oil", "lay/a/red", "lay/b/oil"] and errors == []


def test_eval_with_no_edit_at_all_is_one_line_naming_the_layout(tmp_path):
    suite = _suite(tmp_path)
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli.app, ["eval", str(tmp_path / "empty"), "--suite", str(suite), "--device", "cpu",
                                       "--results-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2
    assert "no edit of any of the 4 samples" in res.output and "<dir>/<video_id>/<edit_id>" in res.output
