"""Issue 25, items 3 and 10: merge and the report never follow a symbolic link out of the run; merge
takes the run lock."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from bench import cli
from bench.store.results import ResultStore
from bench.media.video_io import list_frame_files, write_frames

MAGENTA = (255, 0, 255)


def _suite(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    write_frames(tmp_path / "clips" / "a", rng.integers(0, 100, size=(4, 16, 16, 3)).astype(np.uint8))
    m = tmp_path / "suite.yaml"
    m.write_text("name: tiny\npreprocess: {num_frames: 4, size: 16}\nvideos:\n  - id: a\n    source: clips/a\n"
                 "    source_prompt: a thing\n    edits:\n      - {id: e1, edit_type: style, target_prompt: oil}\n")
    return m


def _run(tmp_path: Path, name: str) -> Path:
    res = CliRunner().invoke(cli.app, ["run", "--suite", str(_suite(tmp_path)), "--methods", "source", "--metrics",
                                       "temporal_flickering", "--device", "cpu", "--results-dir", str(tmp_path / "runs"),
                                       "--name", name, "--no-export"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return tmp_path / "runs" / name


def _plant_links(run: Path, tmp_path: Path) -> Path:
    """An outside folder with a secret and a magenta image; the run's edit folder links to both."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside-secret")
    Image.fromarray(np.full((16, 16, 3), MAGENTA, np.uint8)).save(outside / "magenta.png")
    with ResultStore(run) as st:
        edit_dir = Path(next(r["output_dir"] for r in st.iter_edits("ok")))
    (edit_dir / "leak").symlink_to(outside, target_is_directory=True)
    frame = list_frame_files(edit_dir)[0]
    frame.unlink()
    frame.symlink_to(outside / "magenta.png")
    return outside


def test_merge_never_copies_what_a_link_points_at(tmp_path):
    run = _run(tmp_path, "s0")
    _plant_links(run, tmp_path)
    dest = tmp_path / "runs" / "merged"
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(run), "--no-export"])
    assert "Traceback" not in res.output
    for p in dest.rglob("*"):
        assert not p.is_symlink(), p
        if p.is_file():
            assert b"outside-secret" not in p.read_bytes(), p
            if p.suffix == ".png":
                assert not np.all(np.asarray(Image.open(p).convert("RGB")) == MAGENTA), f"outside image copied: {p}"


def test_report_preview_never_shows_an_outside_image(tmp_path):
    run = _run(tmp_path, "s0")
    _plant_links(run, tmp_path)
    res = CliRunner().invoke(cli.app, ["leaderboard", str(run)])
    assert res.exit_code == 0, res.output
    gifs = list((run / "leaderboard").rglob("*.gif"))
    assert gifs
    for g in gifs:
        im = Image.open(g)
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            a = np.asarray(im.convert("RGB")).astype(int)
            assert np.abs(a - np.array(MAGENTA)).sum(-1).mean() > 60, f"{g} frame {i} is the outside image"
    html = next((run / "leaderboard").rglob("report.html")).read_text()
    assert "symbolic link" in html


# --- item 10 (and 13: stale merge folders): merge takes the run lock --------------------------------
def test_merge_refuses_a_run_folder_in_use_and_cleans_stale_merge_folders(tmp_path):
    from bench.running.locking import RunLock

    run = _run(tmp_path, "s0")
    dest = _run(tmp_path, "dest")
    stale = tmp_path / "runs" / ".dest.merge-k1ll3d"
    stale.mkdir()
    (stale / "results.sqlite").write_bytes(b"half")
    with RunLock(dest):  # a `run` holds the destination
        res = CliRunner().invoke(cli.app, ["merge", str(dest), str(run), "--no-export"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert [ln for ln in res.output.splitlines() if ln.startswith("error:")] and "in use" in res.output
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(run), "--no-export"])
    assert res.exit_code == 0, res.output
    assert not stale.exists()


def test_two_merges_into_one_new_folder_one_line_no_traceback(tmp_path):
    import subprocess
    import sys

    run = _run(tmp_path, "s0")
    dest = tmp_path / "runs" / "merged"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cmd = [sys.executable, str(repo / "run_bench.py"), "merge", str(dest), str(run), "--no-export"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) for _ in range(3)]
    outs = [(p.wait(timeout=300), p.stdout.read()) for p in procs]
    assert any(rc == 0 for rc, _ in outs), outs
    for rc, out in outs:
        assert "Traceback" not in out, out
        if rc:
            assert rc == 2 and len([ln for ln in out.splitlines() if ln.startswith("error:")]) == 1, out
    assert (dest / "results.sqlite").is_file()
    assert not list(dest.parent.glob(".merged.merge-*"))
