"""Issue 8: balanced `--shard i/n`, and `merge` that refuses differently configured runs, recomputes
set-level metrics over the merged edits, is self-contained, creates nothing on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench import cli
from bench.api.catalog import METHODS, METRICS
from bench.api.metric import Metric
from bench.running.plan import balanced_shard
from bench.store.results import ResultStore
from bench.suites import load_suite
from bench.media.video_io import read_video, write_frames


class _SetMean(Metric):
    """A set-level metric with a known answer: the mean pixel value over every edited frame of the set."""

    name = "test-set-mean"
    level = "set"
    value_range = (0.0, 255.0)

    def compute_set(self, items):
        frames = [it.edited.frames.astype(np.float64) for it in items]
        return {self.name: float(np.concatenate([f.ravel() for f in frames]).mean())}


if _SetMean.name not in METRICS.names():
    METRICS.register(_SetMean.name, _SetMean)
if "ray-slow-shift" not in METHODS.names():  # a weight-free text-and-image edit (tests/ray_fixtures.py)
    METHODS.register("ray-slow-shift", "ray_fixtures:SlowShift")


@pytest.mark.parametrize("n", [2, 3, 4])
def test_shards_are_balanced_disjoint_and_independent_of_order(n):
    samples = list(load_suite("mini").samples)
    shards = [balanced_shard(samples, (i, n)) for i in range(n)]
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(samples)
    uids = [s.uid for sh in shards for s in sh]
    assert sorted(uids) == sorted(s.uid for s in samples)
    rev = [[s.uid for s in balanced_shard(samples[::-1], (i, n))] for i in range(n)]
    assert [sorted(r) for r in rev] == [sorted(s.uid for s in sh) for sh in shards]


def _suite(tmp_path: Path) -> Path:
    """Two synthetic clips with two edits each (4 samples)."""
    rng = np.random.default_rng(3)
    videos = []
    for v in ("a", "b"):
        base = rng.integers(0, 256, size=(24, 24, 3))
        write_frames(tmp_path / "clips" / v, np.stack([np.roll(base, k, axis=1) for k in range(6)]).astype(np.uint8))
        videos.append(f"  - id: {v}\n    source: clips/{v}\n    source_prompt: a thing\n    edits:\n"
                      f"      - {{id: e1, edit_type: style, target_prompt: a thing in oil}}\n"
                      f"      - {{id: e2, edit_type: foreground, target_prompt: a red thing}}\n")
    m = tmp_path / "suite.yaml"
    m.write_text("name: tiny\npreprocess: {num_frames: 4, size: 16}\nvideos:\n" + "".join(videos))
    return m


def _run(tmp_path, suite, name, *extra):
    res = CliRunner().invoke(cli.app, [
        "run", "--suite", str(suite), "--methods", "source,ray-slow-shift", "--method-opt", "ray-slow-shift.delay=0",
        "--metrics", "temporal_flickering,test-set-mean", "--device", "cpu", "--results-dir", str(tmp_path / "runs"),
        "--name", name, "--no-export", *extra], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return tmp_path / "runs" / name


def _lb(run: Path) -> str:
    res = CliRunner().invoke(cli.app, ["leaderboard", str(run), "--no-report"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return (run / "leaderboard" / "leaderboard.csv").read_text()


def _set_values(run: Path) -> dict[str, list[float]]:
    with ResultStore(run) as st:
        df = st.scores_frame()
    df = df[(df.metric == "test-set-mean") & (df.status == "ok")]
    return {m: sorted(g.value) for m, g in df.groupby("method")}


def test_merged_shards_equal_a_single_run_are_self_contained_and_recompute_set_metrics(tmp_path):
    suite = _suite(tmp_path)
    s0, s1 = _run(tmp_path, suite, "s0", "--shard", "0/2"), _run(tmp_path, suite, "s1", "--shard", "1/2")
    single = _run(tmp_path, suite, "single")
    dest = tmp_path / "runs" / "merged"
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(s0), str(s1), "--no-export"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "recomputed" in res.output
    shutil.rmtree(s0), shutil.rmtree(s1)  # the merged run needs nothing of the shards
    with ResultStore(dest) as st:
        edits = [r for r in st.iter_edits("ok")]
    assert len(edits) == 8  # source + ray-slow-shift on 4 samples
    assert all(r["output_dir"] and Path(r["output_dir"]).is_dir() and dest in Path(r["output_dir"]).parents
               for r in edits)
    # the full-set value is the known answer over every merged edit, and equals the single run's
    for method in {r["method"] for r in edits}:
        frames = [read_video(r["output_dir"])[0].astype(np.float64).ravel() for r in edits if r["method"] == method]
        truth = float(np.concatenate(frames).mean())
        assert any(abs(v - truth) < 1e-9 for v in _set_values(dest)[method]), (method, truth, _set_values(dest))
    assert _lb(dest) == _lb(single)


def test_merge_refuses_runs_that_differ_in_frame_count_and_creates_nothing(tmp_path):
    suite = _suite(tmp_path)
    s0 = _run(tmp_path, suite, "s0", "--shard", "0/2")
    s1 = _run(tmp_path, suite, "s1", "--shard", "1/2", "--num-frames", "3")
    dest = tmp_path / "runs" / "merged"
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(s0), str(s1)])
    assert res.exit_code == 2
    assert "suite_overrides" in res.output and "num_frames" in res.output and "Traceback" not in res.output
    assert not dest.exists() and sorted(p.name for p in (tmp_path / "runs").iterdir()) == before
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(s0), str(tmp_path / "nope")])
    assert res.exit_code == 2 and not dest.exists()


def test_merge_refuses_a_different_seed_into_an_existing_run(tmp_path):
    suite = _suite(tmp_path)
    s0 = _run(tmp_path, suite, "s0", "--shard", "0/2")
    s1 = _run(tmp_path, suite, "s1", "--shard", "1/2", "--seed", "7")
    with ResultStore(s0) as st:
        before = st.counts()
    res = CliRunner().invoke(cli.app, ["merge", str(s0), str(s1)])
    assert res.exit_code == 2 and "seed" in res.output
    with ResultStore(s0) as st:
        assert st.counts() == before


def test_shards_run_into_one_store_give_the_full_set_value_and_the_single_run_table(tmp_path):
    suite = _suite(tmp_path)
    _run(tmp_path, suite, "same", "--shard", "0/2")
    first = _set_values(tmp_path / "runs" / "same")
    same = _run(tmp_path, suite, "same", "--shard", "1/2")
    single = _run(tmp_path, suite, "single")
    values = _set_values(same)
    assert all(set(first[m]) <= set(values[m]) for m in first)  # the first shard's value stays
    with ResultStore(same) as st:
        edits = list(st.iter_edits("ok"))
    for method in {r["method"] for r in edits}:
        frames = [read_video(r["output_dir"])[0].astype(np.float64).ravel() for r in edits if r["method"] == method]
        assert any(abs(v - float(np.concatenate(frames).mean())) < 1e-9 for v in values[method])
    assert _lb(same) == _lb(single)


def test_merge_refuses_two_different_suites_with_the_same_name_and_ids(tmp_path):
    """Same `name:`, same manifest file name, same ids; other videos and prompts: not one suite."""
    one = _suite(tmp_path / "one")
    two = _suite(tmp_path / "two")
    text = two.read_text().replace("a thing in oil", "a thing in watercolour")
    two.write_text(text)
    a = _run(tmp_path, one, "a")
    b = _run(tmp_path, two, "b")
    dest = tmp_path / "runs" / "merged"
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(a), str(b)])
    assert res.exit_code == 2, res.output
    assert "sample tiny/a/e1 differs in content" in res.output and "Traceback" not in res.output
    assert not dest.exists()
    # the same suite in two places (a manifest copied to another node) still merges
    (tmp_path / "three").mkdir()
    shutil.copytree(tmp_path / "one" / "clips", tmp_path / "three" / "clips")
    shutil.copy(one, tmp_path / "three" / "suite.yaml")
    c = _run(tmp_path, tmp_path / "three" / "suite.yaml", "c")
    res = CliRunner().invoke(cli.app, ["merge", str(dest), str(a), str(c), "--no-export"])
    assert res.exit_code == 0, res.output
