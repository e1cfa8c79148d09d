"""The README's main job runs with a relative --results-dir ("results"): stored paths must resolve."""

from __future__ import annotations

from pathlib import Path

from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore


def test_relative_results_dir_stores_resolvable_paths_and_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig(suite="mini", methods=["source"], metrics=["temporal_flickering"], results_dir="results",
                    limit=2, suite_overrides={"num_frames": 4, "size": 32})
    summary = run_benchmark(cfg)
    assert summary.scores["temporal_flickering"] == {"ok": 2}
    with ResultStore(tmp_path / "results" / "mini") as store:
        edits = list(store.iter_edits("ok"))
    assert len(edits) == 2
    for e in edits:
        out = Path(e["output_dir"])
        assert out.is_dir() and out.is_relative_to(tmp_path / "results" / "mini" / "edits")
        assert len(list(out.glob("*.png"))) == 4
    assert not (tmp_path / "results" / "mini" / "results").exists()
