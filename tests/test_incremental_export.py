"""Export rebuilds only what changed: re-exporting a finished run touches no file (same inode and
mtime), a changed edit re-encodes only its own preview, a changed score redraws only the plots
that show it, and VIDEDITBENCH_INCREMENTAL_EXPORT=0 (the old path) rewrites everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli.run import _export
from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore
from bench.media.video_io import read_image, read_video, write_image

TINY = {"num_frames": 4, "size": 32}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    cfg = RunConfig(suite="mini", methods=["source", "color-transfer"],
                    metrics=["temporal_flickering", "bg_psnr", "warp_error@flow=dis"],
                    results_dir=str(tmp_path_factory.mktemp("inc")), run_name="r", device="cpu",
                    suite_overrides=dict(TINY))
    run_benchmark(cfg)
    return cfg.run_dir


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _export_copy(run_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    run = tmp_path / run_dir.name
    shutil.copytree(run_dir, run)
    out = run / "leaderboard"
    _export(run, out)
    return run, out


def test_rerun_and_reexport_of_a_finished_run_touch_no_file(finished_run, tmp_path):
    import dataclasses

    run, out = _export_copy(finished_run, tmp_path)
    before = _stamps(out)
    plots = [k for k in before if k.endswith(".svg") and "plots" in k]
    gifs = [k for k in before if k.endswith(".gif")]
    tables = [k for k in before if k.endswith((".csv", ".md", ".json", ".html"))]
    assert len(plots) >= 4 and len(gifs) >= 20 and len(tables) >= 8 and any("mask.gif" in g for g in gifs)
    _export(run, out)
    assert _stamps(out) == before
    # `videditbench run` of the finished store: nothing to compute (one more invocation row), same files
    with ResultStore(run) as store:
        cfg = dataclasses.replace(RunConfig(**{k: v for k, v in store.invocations()[-1]["config"].items()
                                              if k in {f.name for f in dataclasses.fields(RunConfig)}}),
                                  results_dir=str(tmp_path))
    summary = run_benchmark(cfg)
    assert summary.edits_done == 0 and summary.scores_done == 0 and summary.edits_skipped_existing > 0
    _export(run, out)
    assert _stamps(out) == before


def test_a_changed_edit_reencodes_only_its_preview_and_a_changed_score_redraws_its_plots(finished_run, tmp_path):
    run, out = _export_copy(finished_run, tmp_path)
    before = _stamps(out)
    with ResultStore(run) as store:
        edit = next(r for r in store.iter_edits("ok") if r["method"] == "color-transfer")
        store.conn.execute("UPDATE scores SET value = value * 0.5 WHERE metric = 'bg_psnr' AND status = 'ok'")
    frame = sorted(Path(edit["output_dir"]).glob("*.png"))[0]
    write_image(frame, 255 - read_image(frame))
    _export(run, out)
    after = _stamps(out)
    changed = {k for k in before if after.get(k) != before[k]}
    gifs = {k for k in changed if k.endswith(".gif")}
    assert len(gifs) == 1 and "method_color-transfer" in next(iter(gifs))
    bars = {k for k in changed if "/bar_" in k}
    assert bars and all("bg_psnr" in k for k in bars)
    assert not any("/bar_temporal_flickering" in k for k in changed)
    assert "leaderboard.csv" in changed and "status.csv" not in changed


def test_the_old_path_rewrites_everything(finished_run, tmp_path, monkeypatch):
    run, out = _export_copy(finished_run, tmp_path)
    before = _stamps(out)
    monkeypatch.setenv("VIDEDITBENCH_INCREMENTAL_EXPORT", "0")
    _export(run, out)
    after = _stamps(out)
    rewritten = {k for k in before if after[k] != before[k]}
    assert {k for k in before if "plots" in k or k.endswith(".csv") or "mask.gif" in k} <= rewritten


def test_previews_of_an_older_encoding_are_reencoded_once_then_left_alone(finished_run, tmp_path, monkeypatch):
    import bench.media.video_io

    with monkeypatch.context() as m:
        m.setattr(bench.media.video_io, "GIF_ENCODING", "an older palette")
        run, out = _export_copy(finished_run, tmp_path)
    before = _stamps(out)
    gifs = {k for k in before if k.endswith(".gif")}
    first = {k: read_video(out / k)[0] for k in gifs}
    _export(run, out)
    after = _stamps(out)
    assert gifs and {k for k in before if after[k] != before[k] and k.endswith(".gif")} == gifs
    for k in gifs:  # the same palette code: the same pixels, only the key in the comment is new
        assert (read_video(out / k)[0] == first[k]).all()
    _export(run, out)
    assert _stamps(out) == after
    # a fresh export of the same store gives byte-identical previews
    fresh = tmp_path / "fresh"
    _export(run, fresh)
    assert {k: (fresh / k).read_bytes() for k in gifs} == {k: (out / k).read_bytes() for k in gifs}
