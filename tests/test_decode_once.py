"""Decode once: every edited video is read at most once per run for all metrics (bench.store.frame_cache;
not at all when the run just wrote it), the numbers equal the old decode-per-metric path, and the
cache stays inside its byte budget."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bench.media.video_io as video_io
from bench.store.frame_cache import ByteLRU, nbytes
from bench.running.runner import RunConfig, Runner, run_benchmark
from bench.store.results import ResultStore

TINY = {"num_frames": 4, "size": 32}
# weight-free metrics that read the edited frames (sample level) plus one set-level metric reading them again
METRICS = ["temporal_flickering", "bg_psnr", "bg_ssim", "warp_error@flow=gt", "motion_alignment@flow=dis"]


def _cfg(tmp_path: Path, name: str, metrics=tuple(METRICS), **kw) -> RunConfig:
    return RunConfig(suite="mini", methods=["source", "color-transfer"], metrics=list(metrics),
                     results_dir=str(tmp_path), run_name=name, device="cpu", suite_overrides=dict(TINY), **kw)


def _count_reads(monkeypatch) -> Counter:
    reads: Counter = Counter()
    real = video_io.read_video

    def counting(path, *a, **kw):
        reads[str(Path(path).resolve())] += 1
        return real(path, *a, **kw)

    monkeypatch.setattr(video_io, "read_video", counting)
    return reads


def _values(run_dir: Path) -> dict[tuple, float]:
    with ResultStore(run_dir) as store:
        sc = store.scores_frame()
    ok = sc[sc.status == "ok"]
    return {(r.method, r.sample_uid, r.metric, r.variant_id): float(r.value) for r in ok.itertuples()}


def _families_per_edit(run_dir: Path) -> Counter:
    """output dir -> how many metric variants scored it (ok rows)."""
    with ResultStore(run_dir) as store:
        dirs = {r["edit_key"]: str(Path(r["output_dir"]).resolve()) for r in store.iter_edits("ok")}
        sc = store.scores_frame()
    ok = sc[(sc.status == "ok") & sc.edit_key.isin(list(dirs))]
    return Counter(dirs[k] for k, _, _ in set(zip(ok.edit_key, ok.metric_family, ok.variant_id)))


def _edit_dirs(run_dir: Path) -> set[str]:
    with ResultStore(run_dir) as store:
        return {str(Path(r["output_dir"]).resolve()) for r in store.iter_edits("ok")}


def test_each_edit_is_decoded_once_and_the_numbers_are_unchanged(tmp_path, monkeypatch):
    # edits first (so only the scoring phase's reads are counted below)
    for name in ("once", "per_metric"):
        run_benchmark(_cfg(tmp_path, name), do_metrics=False)
    reads = _count_reads(monkeypatch)
    run_benchmark(_cfg(tmp_path, "once"))
    dirs = _edit_dirs(tmp_path / "once")
    assert len(dirs) == 28  # 22 mini samples by `source`, 6 image-guided ones by color-transfer
    assert {d: reads[d] for d in dirs} == {d: 1 for d in dirs}

    reads.clear()
    run_benchmark(_cfg(tmp_path, "per_metric", decode_once=False))
    old = _edit_dirs(tmp_path / "per_metric")
    # the old path decodes every edit once per metric that scores it
    families = _families_per_edit(tmp_path / "per_metric")
    assert {d: reads[d] for d in old} == {d: families[d] for d in old} and max(families.values()) >= 4

    a, b = _values(tmp_path / "once"), _values(tmp_path / "per_metric")
    assert len(a) >= 28 * 3 and a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)  # bit-identical, not merely close


def test_a_budget_smaller_than_the_run_still_saves_decodes_and_keeps_the_numbers(tmp_path, monkeypatch):
    for name in ("small", "unbounded"):
        run_benchmark(_cfg(tmp_path, name), do_metrics=False)
    one_edit = 4 * 32 * 32 * 3
    monkeypatch.setenv("VIDEDITBENCH_DECODE_CACHE_MB", str(10 * one_edit / 2**20))  # 10 of the 28 edits fit
    reads = _count_reads(monkeypatch)
    run_benchmark(_cfg(tmp_path, "small"))
    dirs = _edit_dirs(tmp_path / "small")
    small = sum(reads[d] for d in dirs)
    per_metric = sum(_families_per_edit(tmp_path / "small").values())  # what decoding per metric costs
    # every pass after the first finds the previous pass's last 10 edits in memory (alternating directions)
    assert len(dirs) < small < per_metric
    monkeypatch.delenv("VIDEDITBENCH_DECODE_CACHE_MB")
    run_benchmark(_cfg(tmp_path, "unbounded"))
    assert _values(tmp_path / "small") == _values(tmp_path / "unbounded")


def test_a_fresh_run_scores_the_frames_it_just_wrote_without_decoding_them(tmp_path, monkeypatch):
    reads = _count_reads(monkeypatch)
    run_benchmark(_cfg(tmp_path, "fresh"))
    dirs = _edit_dirs(tmp_path / "fresh")
    assert len(dirs) == 28 and not any(reads[d] for d in dirs)
    monkeypatch.undo()
    # and the numbers are those of scoring the stored (decoded) frames
    run_benchmark(_cfg(tmp_path, "stored"), do_metrics=False)
    run_benchmark(_cfg(tmp_path, "stored"))
    assert _values(tmp_path / "fresh") == _values(tmp_path / "stored")


def test_decode_once_env_switch_restores_the_old_path(monkeypatch):
    monkeypatch.setenv("VIDEDITBENCH_DECODE_ONCE", "0")
    assert RunConfig().decode_once is False
    monkeypatch.delenv("VIDEDITBENCH_DECODE_ONCE")
    assert RunConfig().decode_once is True


def test_loaded_samples_are_cached_and_bounded_by_bytes(tmp_path, monkeypatch):
    runner = Runner(_cfg(tmp_path, "lru"))
    loads: Counter = Counter()
    real = runner.suite.load

    def counting(sample):
        loads[sample.uid] += 1
        return real(sample)

    monkeypatch.setattr(runner.suite, "load", counting)
    for _ in range(3):
        for s in runner.samples:
            runner.load(s)
    assert set(loads.values()) == {1}  # within the budget: loaded once however often asked
    one = nbytes(runner.load(runner.samples[0]))
    runner._loaded = ByteLRU(max_bytes=2 * one)
    for s in runner.samples:
        runner.load(s)
    assert len(runner._loaded) <= 2 and runner._loaded.bytes <= 2 * one
    runner.store.close()


def test_byte_lru_evicts_least_recently_used_and_skips_oversized():
    lru: ByteLRU[np.ndarray] = ByteLRU(max_bytes=300)
    calls: Counter = Counter()

    def make(key: str, n: int):
        def load():
            calls[key] += 1
            return np.zeros(n, np.uint8)
        return load

    lru.get("a", make("a", 100))
    lru.get("b", make("b", 100))
    lru.get("a", make("a", 100))  # hit: "a" becomes most recent
    lru.get("c", make("c", 150))  # evicts "b", the least recently used
    assert "a" in lru and "c" in lru and "b" not in lru and lru.bytes == 250
    assert lru.get("big", make("big", 301)).nbytes == 301 and "big" not in lru  # returned, never kept
    assert calls == Counter(a=1, b=1, c=1, big=1) and lru.hits == 1
    off: ByteLRU[np.ndarray] = ByteLRU(max_bytes=0)
    off.get("a", make("a", 1))
    off.get("a", make("a", 1))
    assert calls["a"] == 3 and len(off) == 0


@pytest.mark.parametrize("obj,expected", [((np.zeros(3), {"k": np.zeros(2, np.uint8)}), 26), ("text", 0)])
def test_nbytes_counts_nested_arrays(obj, expected):
    assert nbytes(obj) == expected


def test_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("VIDEDITBENCH_DECODE_CACHE_MB", "3")
    assert ByteLRU().max_bytes == 3 * 2**20
    monkeypatch.setenv("VIDEDITBENCH_DECODE_CACHE_MB", "not a number")
    assert 0 < ByteLRU().max_bytes <= 2048 * 2**20
